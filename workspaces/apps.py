from django.apps import AppConfig


class WorkspacesConfig(AppConfig):
    name = "workspaces"

    def ready(self):
        from workspaces import (
            checks,  # noqa: F401 - registers the system checks
            signals,  # noqa: F401 - invalidates the cached memberships on every change
        )
