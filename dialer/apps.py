from django.apps import AppConfig


class DialerConfig(AppConfig):
    name = "dialer"

    def ready(self):
        from . import checks  # noqa: F401 - registers the deploy checks
