"""Call log and call pages: newest first, pagination, validated filters, workspace scoping, voicemail audio."""
import secrets
from datetime import timedelta

import pytest
from django.utils import timezone

from dialer.models import Call, CallLeg, Voicemail
from tests.dialer.voice_fixtures import ready_workspace

pytestmark = pytest.mark.django_db


def make_call(workspace, **fields):
    defaults = dict(workspace=workspace, sid="CA" + secrets.token_hex(16), direction="outbound",
                    from_number="+15125550100", to_number="+14155550142", status="completed")
    defaults.update(fields)
    return Call.objects.create(**defaults)


def test_log_lists_newest_first_and_paginates(member_client, workspace, member_user):
    now = timezone.now()
    calls = [make_call(workspace, user=member_user, started_at=now - timedelta(minutes=i)) for i in range(30)]
    response = member_client.get("/calls/")
    assert response.status_code == 200
    page = response.context["page"]
    assert [c.pk for c in page] == [c.pk for c in calls[:25]]
    assert page.paginator.num_pages == 2
    second = member_client.get("/calls/?page=2").context["page"]
    assert [c.pk for c in second] == [c.pk for c in calls[25:]]
    assert calls[0].sid in response.content.decode()


def test_log_filters(member_client, workspace, member_user, admin_user):
    a = make_call(workspace, user=member_user, direction="outbound", status="completed")
    b = make_call(workspace, user=admin_user, direction="inbound", status="no-answer")
    c = make_call(workspace, user=member_user, direction="inbound", status="completed")
    ids = lambda r: {x.pk for x in r.context["page"]}  # noqa: E731
    assert ids(member_client.get("/calls/", {"user": member_user.pk})) == {a.pk, c.pk}
    assert ids(member_client.get("/calls/", {"direction": "inbound"})) == {b.pk, c.pk}
    assert ids(member_client.get("/calls/", {"status": "no-answer"})) == {b.pk}
    assert ids(member_client.get("/calls/", {"user": member_user.pk, "direction": "inbound"})) == {c.pk}


def test_log_bad_filter_values_get_a_message(member_client, workspace, member_user):
    make_call(workspace, user=member_user)
    response = member_client.get("/calls/", {"status": "exploded", "direction": "sideways"})
    assert response.status_code == 200
    form = response.context["form"]
    assert "status" in form.errors and "direction" in form.errors
    assert list(response.context["page"]) == []
    assert "Select a valid choice" in response.content.decode()


def test_log_is_scoped_to_the_workspace(other_client, workspace, other_workspace, member_user):
    mine = make_call(workspace, user=member_user)
    response = other_client.get("/calls/")
    assert response.status_code == 200
    assert mine.sid not in response.content.decode()
    assert list(response.context["page"]) == []


def test_log_user_filter_of_another_workspace_is_404(other_client, member_user, workspace, other_workspace):
    make_call(workspace, user=member_user)
    assert other_client.get("/calls/", {"user": member_user.pk}).status_code == 404


def test_log_needs_login(client):
    response = client.get("/calls/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_log_query_count(member_client, workspace, member_user, django_assert_max_num_queries):
    for _ in range(25):
        call = make_call(workspace, user=member_user)
        Voicemail.objects.create(workspace=workspace, call=call, recording_sid="RE" + secrets.token_hex(16))
    with django_assert_max_num_queries(12):
        assert member_client.get("/calls/").status_code == 200


def test_call_page_shows_legs_timing_and_voicemail(member_client, workspace, member_user):
    now = timezone.now()
    call = make_call(workspace, user=member_user, direction="inbound", status="no-answer", started_at=now,
                     ended_at=now + timedelta(seconds=50), duration=0)
    CallLeg.objects.create(call=call, sid="CA" + "2" * 32, kind="client", to_number="client:x", status="no-answer")
    vm = Voicemail.objects.create(workspace=workspace, call=call, recording_sid="RE" + "3" * 32, status="completed",
                                  duration=17)
    response = member_client.get(f"/calls/{call.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert call.sid in html and "CA" + "2" * 32 in html
    assert f"/calls/{call.pk}/voicemails/{vm.pk}/audio" in html
    assert "17 s" in html


def test_call_page_of_another_workspace_is_404(other_client, workspace, member_user):
    call = make_call(workspace, user=member_user)
    assert other_client.get(f"/calls/{call.pk}/").status_code == 404


def test_voicemail_audio_is_proxied_and_scoped(member_client, other_client, workspace, member_user, twilio_sandbox):
    sid, token = twilio_sandbox.add_account()
    ready_workspace(workspace)
    from telephony.models import TwilioConnection

    TwilioConnection.objects.filter(workspace=workspace).update(account_sid=sid)
    connection = TwilioConnection.objects.get(workspace=workspace)
    connection.auth_token = token
    connection.save(update_fields=["auth_token"])
    call = make_call(workspace, user=member_user, direction="inbound", status="no-answer")
    rec_sid = twilio_sandbox.add_recording(sid, call.sid)
    twilio_sandbox.complete_recording(sid, rec_sid)
    vm = Voicemail.objects.create(workspace=workspace, call=call, recording_sid=rec_sid, status="completed")
    response = member_client.get(f"/calls/{call.pk}/voicemails/{vm.pk}/audio")
    assert response.status_code == 200, response.content if hasattr(response, "content") else ""
    assert response["Content-Type"] == "audio/mpeg"
    assert b"".join(response.streaming_content)
    assert other_client.get(f"/calls/{call.pk}/voicemails/{vm.pk}/audio").status_code == 404
    # The right voicemail id under another call's URL is not found either.
    other_call = make_call(workspace, user=member_user)
    assert member_client.get(f"/calls/{other_call.pk}/voicemails/{vm.pk}/audio").status_code == 404


def test_sidebar_links_and_panel_on_pages(member_client, workspace):
    ready_workspace(workspace)
    html = member_client.get("/calls/").content.decode()
    assert 'href="/calls/"' in html and 'href="/calls/troubleshoot/"' in html
    assert 'data-testid="dialer-panel"' in html
    assert "vendor/twilio-voice/twilio.min.js" in html
    assert 'data-ready="true"' in html


def test_panel_shows_the_banner_when_not_ready(member_client, workspace):
    html = member_client.get("/calls/").content.decode()
    assert 'data-testid="dialer-banner"' in html
    panel = html[html.index('data-testid="dialer-panel"'):]
    assert "Connect your phone system" in panel
    assert "vendor/twilio-voice/twilio.min.js" not in html


def test_no_panel_when_logged_out(client):
    assert b"dialer-panel" not in client.get("/login/").content


def test_caller_id_options(member_client, workspace, other_client):
    ready_workspace(workspace, numbers=("+15125550100", "+14155550100"), verified=("+13105550111",))
    html = member_client.get("/v1/voice/caller-ids").content.decode()
    assert html.count("<option") == 3 and "+13105550111" in html and "Auto (local presence)" not in html
    from telephony.models import TwilioConnection

    TwilioConnection.objects.filter(workspace=workspace).update(local_presence=True)
    html = member_client.get("/v1/voice/caller-ids").content.decode()
    assert 'value="auto"' in html and "Auto (local presence)" in html
    # Another workspace sees only its own (none).
    assert "+15125550100" not in other_client.get("/v1/voice/caller-ids").content.decode()
