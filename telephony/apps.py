from django.apps import AppConfig


class TelephonyConfig(AppConfig):
    name = "telephony"
    verbose_name = "Telephony (the workspace's Twilio account)"

    def ready(self):
        from telephony import checks  # noqa: F401 - registers the deploy checks
