"""The main pages of the app, with the rows they need, for the Content-Security-Policy tests."""
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from calls.models import CallRecording, CallSession, CallTurn
from tests.agents.factories import EnvironmentSecretFactory, PhoneConnectorFactory, published_agent
from tests.dialer.voice_fixtures import ready_workspace


def studio_rows(workspace):
    ready_workspace(workspace, numbers=("+15125550100",))
    agent = published_agent(workspace)
    connector = PhoneConnectorFactory(workspace=workspace, agent=agent, name="Main line")
    EnvironmentSecretFactory(environment=connector.environment, name="CRM_KEY")
    started = timezone.now() - timedelta(minutes=5)
    call = CallSession.objects.create(
        call_sid="CA" + "7" * 32, workspace=workspace, connector=connector,
        agent_version=agent.versions.exclude(state="draft").first() or agent.versions.first(),
        environment=connector.environment, from_number="+15125550199", to_number="+15125550100",
        status="completed", stream_token_used_at=started)
    CallSession.objects.filter(pk=call.pk).update(started_at=started, ended_at=started + timedelta(seconds=90))
    CallTurn.objects.create(call_session=call, seq=1, role="agent", text="Hello, how can I help?", started_at=started)
    CallRecording.objects.create(call_session=call, recording_sid="RE" + "1" * 32, status="completed", duration=90)
    return agent, connector, call


def main_pages(workspace, agent, connector, call) -> list[str]:
    kind = connector.environment.kind
    return [
        reverse("home"),
        reverse("dialer:call_log"),
        reverse("dialer:troubleshoot"),
        reverse("dialer:settings"),
        reverse("dialer:numbers"),
        reverse("dialer:caller_ids"),
        reverse("workspace_security"),
        reverse("audit_log"),
        reverse("two_factor_setup"),
        reverse("agents:list"),
        reverse("agents:detail", args=[agent.pk]),
        reverse("agents:actions", args=[agent.pk]),
        reverse("agents:versions", args=[agent.pk]),
        reverse("agents:tests", args=[agent.pk]),
        reverse("agents:environments"),
        reverse("agents:environment", args=[kind]),
        reverse("connectors:list"),
        reverse("connectors:detail", args=[connector.pk]),
        reverse("calls:list"),
        reverse("calls:live"),
        reverse("calls:detail", args=[call.pk]),
        reverse("analytics:studio") + f"?agent={agent.pk}",
        reverse("analytics:dialer"),
        reverse("webhooks:reference"),
        reverse("admin:index"),
        reverse("admin:workspaces_workspace_changelist"),
        reverse("admin:workspaces_workspace_change", args=[workspace.pk]),
        reverse("admin:workspaces_auditentry_changelist"),
        reverse("admin:axes_accessattempt_changelist"),
        reverse("admin:otp_totp_totpdevice_changelist"),
    ]
