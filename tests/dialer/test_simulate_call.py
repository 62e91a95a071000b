"""Settings → Dialer → Phone numbers: "Simulate a call" (and `manage.py simulate_call`) against the local sandbox."""
import pytest
from django.core.management import CommandError, call_command

from telephony.models import PhoneNumber
from tests.dialer.settings_helpers import connect_byok

pytestmark = pytest.mark.django_db


@pytest.fixture
def connected(workspace, twilio_sandbox, django_capture_on_commit_callbacks):
    connection, sid, _ = connect_byok(workspace, twilio_sandbox, django_capture_on_commit_callbacks,
                                      numbers=("+15125550100",))
    return connection, PhoneNumber.objects.get(workspace=workspace)


def test_the_button_asks_the_sandbox_to_call_the_number(admin_client, twilio_sandbox, connected):
    _, number = connected
    admin_client.post(f"/settings/dialer/numbers/{number.pk}/route-to-dialer/")
    page = admin_client.get("/settings/dialer/numbers/")
    assert b'data-testid="simulate-call"' in page.content
    assert b"data-dialer-page" in page.content  # this page's dialer registers, so the simulated call can ring it
    response = admin_client.post(f"/settings/dialer/numbers/{number.pk}/simulate-call/", follow=True)
    assert "The sandbox is calling +15125550100" in response.content.decode()
    assert "goes to voicemail if nobody does" in response.content.decode()
    placed = list(twilio_sandbox.simulated.values())
    assert [c.to for c in placed] == ["+15125550100"]
    placed[0].done.wait(20)
    # The number rings the dialer's TwiML app: the sandbox requested its voice URL (not served in this test).
    webhook = next(e for e in placed[0].events if e["event"] == "webhook")
    assert webhook["url"] == f"https://calls.example.test/v1/voice/outbound/{number.workspace_id}"


def test_without_the_sandbox_there_is_no_button_and_a_clear_refusal(admin_client, workspace, settings,
                                                                    twilio_sandbox, connected):
    _, number = connected
    settings.TWILIO_API_BASE_URL = ""
    assert b'data-testid="simulate-call"' not in admin_client.get("/settings/dialer/numbers/").content
    response = admin_client.post(f"/settings/dialer/numbers/{number.pk}/simulate-call/", follow=True)
    assert "need the local Twilio sandbox" in response.content.decode()
    assert not twilio_sandbox.simulated


def test_members_and_other_workspaces_cannot_simulate(member_client, other_client, connected):
    _, number = connected
    assert member_client.post(f"/settings/dialer/numbers/{number.pk}/simulate-call/").status_code == 403
    assert other_client.post(f"/settings/dialer/numbers/{number.pk}/simulate-call/").status_code == 404


def test_the_command_places_the_call(twilio_sandbox, connected, capsys):
    call_command("simulate_call", "+15125550100", "--say", "What are your hours?")
    placed = list(twilio_sandbox.simulated.values())
    assert placed and placed[0].say == "What are your hours?"
    assert "Calling +15125550100" in capsys.readouterr().out
    with pytest.raises(CommandError, match="not a number of any workspace"):
        call_command("simulate_call", "+15125550999")
