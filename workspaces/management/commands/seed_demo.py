import os

from django.core.management.base import BaseCommand

from workspaces.services import demo_workspace_ensure


class Command(BaseCommand):
    help = "Create the demo workspace and its admin user (idempotent) and print how to log in."

    def add_arguments(self, parser):
        parser.add_argument("--username", default=os.environ.get("DEMO_USERNAME", "admin"))
        parser.add_argument("--password", default=os.environ.get("DEMO_PASSWORD", "callwell-demo"))

    def handle(self, *args, username, password, **options):
        workspace, created = demo_workspace_ensure(username=username, password=password)
        if created:
            self.stdout.write(self.style.SUCCESS(f"Created the demo workspace '{workspace}' and its admin."))
        self.stdout.write(f"Log in as '{username}' with password '{password}' (unless you changed it since).")
