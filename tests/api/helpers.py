"""Shared set-up of the outbound-call tests: a workspace with a sandbox Twilio account, a caller ID, an agent
and an API key."""
from __future__ import annotations

from dataclasses import dataclass

from api.services import api_key_create
from telephony.models import CallerId
from tests.calls.engine.conftest import make_call_setup

CALLER_ID = "+15125550100"


@dataclass
class OutboundSetup:
    setup: object
    key: str

    @property
    def workspace(self):
        return self.setup.workspace

    def body(self, **overrides) -> dict:
        body = {"agent": self.setup.version.agent_id, "environment": self.setup.environment.pk,
                "to": "+15125550123", "from": CALLER_ID, "version_mode": "draft",
                "variables": {"first_name": "Jane"}, "metadata": {"lead": "L-1"}}
        body.update(overrides)
        return body


def outbound_setup(*, sandbox=None, transport="conversation_relay", machine_action="voicemail") -> OutboundSetup:
    setup = make_call_setup(sandbox=sandbox, transport=transport)
    version = setup.version
    version.greeting = "Hi {first_name}, this is Ava from Acme."
    version.machine_action = machine_action
    version.voicemail_message = "Hi {first_name}, this is Ava from Acme. Please call us back."
    version.analysis_summary = True
    version.save()
    setup.environment.recording_enabled = True
    setup.environment.save(update_fields=["recording_enabled"])
    CallerId.objects.create(workspace=setup.workspace, phone_number=CALLER_ID, kind=CallerId.Kind.PROVISIONED,
                            is_default=True)
    _, raw = api_key_create(workspace=setup.workspace, name="CRM")
    return OutboundSetup(setup=setup, key=raw)
