from django.apps import AppConfig


class DialerConfig(AppConfig):
    name = "dialer"

    def ready(self):
        from dialer.services import rep_transfer_call_apply
        from telephony import hooks

        # A caller handed over to the reps becomes the accepting rep's dialer call (calls.services.rep_transfers).
        hooks.rep_call_hooks.register(rep_transfer_call_apply)
