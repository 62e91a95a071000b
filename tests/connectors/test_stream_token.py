import pytest
from django.core import signing

from calls.models import CallSession
from connectors import services
from tests.agents.factories import PhoneConnectorFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(workspace):
    connector = PhoneConnectorFactory(workspace=workspace)
    return CallSession.objects.create(call_sid="CA" + "9" * 32, workspace=workspace, connector=connector)


def test_token_is_single_use(session):
    token = services.stream_token_issue(call_session=session)
    assert services.stream_token_consume(token=token).pk == session.pk
    with pytest.raises(services.InvalidStreamToken):
        services.stream_token_consume(token=token)


def test_token_expires(session, monkeypatch):
    token = services.stream_token_issue(call_session=session)
    import time

    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 61)
    with pytest.raises(services.InvalidStreamToken, match="expired"):
        services.stream_token_consume(token=token)


@pytest.mark.parametrize("bad", ["", "garbage", "1.abc:xyz:sig"])
def test_forged_tokens_are_refused(session, bad):
    with pytest.raises(services.InvalidStreamToken):
        services.stream_token_consume(token=bad)


def test_token_signed_with_other_salt_is_refused(session):
    services.stream_token_issue(call_session=session)
    forged = signing.TimestampSigner(salt="other").sign(f"{session.pk}.{session.stream_token_nonce}")
    with pytest.raises(services.InvalidStreamToken):
        services.stream_token_consume(token=forged)


def test_session_id_alone_is_not_enough(session):
    services.stream_token_issue(call_session=session)
    guess = signing.TimestampSigner(salt=services.STREAM_TOKEN_SALT).sign(f"{session.pk}.guessed-nonce")
    with pytest.raises(services.InvalidStreamToken):
        services.stream_token_consume(token=guess)


def test_a_ringing_call_is_in_progress_once_its_stream_joins(session):
    assert session.status == CallSession.Status.RINGING  # as Twilio says on the first webhook
    services.stream_token_consume(token=services.stream_token_issue(call_session=session))
    session.refresh_from_db()
    assert session.status == CallSession.Status.IN_PROGRESS
    assert session.get_status_display() == "In progress"


def test_joining_does_not_undo_an_ended_status(session):
    CallSession.objects.filter(pk=session.pk).update(status=CallSession.Status.COMPLETED)
    services.stream_token_consume(token=services.stream_token_issue(call_session=session))
    session.refresh_from_db()
    assert session.status == CallSession.Status.COMPLETED
