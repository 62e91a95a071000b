"""`manage.py simulate_call +15125550100 [--say "…"]`: the local Twilio sandbox calls one of our numbers."""
from django.core.management.base import BaseCommand, CommandError

from telephony import services
from telephony.models import PhoneNumber


class Command(BaseCommand):
    help = "Have the local Twilio sandbox (bin/run --sandbox) place an inbound call to one of the workspaces' numbers."

    def add_arguments(self, parser):
        parser.add_argument("number", help="The number to call, in E.164 (+15125550100).")
        parser.add_argument("--say", default="", help="What the caller says (spoken by espeak-ng).")

    def handle(self, *args, number, say, **options):
        found = PhoneNumber.objects.filter(phone_number=number).select_related("workspace").first()
        if found is None:
            raise CommandError(f"{number} is not a number of any workspace.")
        try:
            call_sid = services.number_call_simulate(workspace=found.workspace, number_id=found.pk, say=say)
        except services.DialerError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Calling {number} ({found.workspace}): {call_sid}. Progress: "
                          f"GET <sandbox>/_sandbox/simulated_calls/{call_sid}")
