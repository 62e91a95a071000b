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
