"""The workspace's do-not-call list: the browser dialer refuses those numbers too, with a clear message."""
import xml.etree.ElementTree as ET

import pytest

from dialer.models import Call
from dialer.services import REFUSE_DO_NOT_CALL
from telephony.selectors import do_not_call_listed
from telephony.services import do_not_call_add, do_not_call_remove
from tests.dialer.test_voice_webhooks import outbound_params, outbound_path
from tests.dialer.voice_fixtures import ready_workspace, signed_post

pytestmark = pytest.mark.django_db


def test_a_rep_calling_a_do_not_call_number_hears_why_and_nothing_is_dialled(client, workspace, member_user):
    connection = ready_workspace(workspace, verified=("+13105550111",))
    do_not_call_add(workspace=workspace, phone_number="+1 415 555 0142", reason="Asked not to be called")
    params = outbound_params(connection, member_user)  # To: (415) 555-0142

    response = signed_post(client, outbound_path(workspace), params, connection.auth_token)

    root = ET.fromstring(response.content)
    assert root.find("Dial") is None and root.find("Say").text == REFUSE_DO_NOT_CALL
    call = Call.objects.get(sid=params["CallSid"])
    assert call.status == Call.Status.REFUSED and call.refusal_reason == Call.Refusal.DO_NOT_CALL
    assert "do-not-call" in call.get_refusal_reason_display()


def test_the_list_stores_e164_once_and_entries_can_be_removed(workspace):
    first = do_not_call_add(workspace=workspace, phone_number="(415) 555-0142")
    again = do_not_call_add(workspace=workspace, phone_number="+14155550142")
    assert first.pk == again.pk and first.phone_number == "+14155550142"
    assert do_not_call_listed(workspace=workspace, phone_number="+14155550142")
    do_not_call_remove(workspace=workspace, entry_id=first.pk)
    assert not do_not_call_listed(workspace=workspace, phone_number="+14155550142")


def test_a_bad_number_is_a_clear_error(workspace):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        do_not_call_add(workspace=workspace, phone_number="not a number")
