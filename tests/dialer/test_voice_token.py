"""GET /v1/voice/token: JWT contents, caching headers, auth, readiness, rate limit, presence."""
import time

import jwt
import pytest

from dialer import tokens as voice
from telephony.models import TwilioConnection
from telephony.selectors import phone_system_status_invalidate
from tests.dialer.voice_fixtures import ready_workspace
from tests.factories import TwilioConnectionFactory

pytestmark = pytest.mark.django_db

URL = "/v1/voice/token"


def test_token_contents(member_client, member_user, workspace):
    connection = ready_workspace(workspace)
    before = int(time.time())
    response = member_client.get(URL)
    assert response.status_code == 200, response.content
    body = response.json()
    assert "no-store" in response["Cache-Control"]
    assert body["identity"] == f"ws{workspace.pk}-u{member_user.pk}"
    assert body["ttl"] == 3600
    claims = jwt.decode(body["token"], connection.api_key_secret, algorithms=["HS256"])
    header = jwt.get_unverified_header(body["token"])
    assert header["cty"] == "twilio-fpa;v=1"
    assert claims["iss"] == connection.api_key_sid
    assert claims["sub"] == connection.account_sid
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["exp"] - claims["nbf"] == 3600
    assert before <= claims["iat"] <= int(time.time())
    assert claims["grants"]["identity"] == body["identity"]
    assert claims["grants"]["voice"]["outgoing"]["application_sid"] == connection.twiml_app_sid
    assert claims["grants"]["voice"]["incoming"]["allow"] is True
    assert body["expires_at_epoch"] == claims["exp"]
    assert body["expires_at"].endswith("Z")
    # Signed with the API key secret: any other key fails.
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(body["token"], connection.auth_token, algorithms=["HS256"])


def test_identity_comes_from_the_session_not_the_request(member_client, member_user, workspace):
    ready_workspace(workspace)
    body = member_client.get(URL + "?identity=ws1-u1&user=1").json()
    assert body["identity"] == f"ws{workspace.pk}-u{member_user.pk}"


def test_ttl_follows_settings(member_client, workspace, settings):
    settings.VOICE_TOKEN_TTL = 600
    connection = ready_workspace(workspace)
    body = member_client.get(URL).json()
    claims = jwt.decode(body["token"], connection.api_key_secret, algorithms=["HS256"])
    assert claims["exp"] - claims["nbf"] == 600 and body["ttl"] == 600


def test_logged_out_gets_401_json(client):
    response = client.get(URL)
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


def test_not_connected_names_the_banner(member_client, workspace):
    response = member_client.get(URL)
    assert response.status_code == 409
    body = response.json()
    assert body["banner"] == "Connect your phone system"
    assert "token" not in body


def test_no_number_names_the_banner(member_client, workspace):
    TwilioConnectionFactory(workspace=workspace, api_key_sid="SKx", api_key_secret="s", twiml_app_sid="APx")
    phone_system_status_invalidate(workspace_id=workspace.pk)
    body = member_client.get(URL).json()
    assert body["banner"] == "Pick a phone number"


def test_error_state_names_the_banner(member_client, workspace):
    ready_workspace(workspace)
    TwilioConnection.objects.filter(workspace=workspace).update(status=TwilioConnection.Status.ERROR,
                                                                error_message="Authenticate")
    phone_system_status_invalidate(workspace_id=workspace.pk)
    response = member_client.get(URL)
    assert response.status_code == 409
    assert response.json()["banner"] == "Phone system error"


def test_missing_api_key_is_a_clear_error(member_client, workspace):
    ready_workspace(workspace)
    TwilioConnection.objects.filter(workspace=workspace).update(api_key_sid="")
    response = member_client.get(URL)
    assert response.status_code == 409
    assert response.json()["error"] == "dialer_not_provisioned"


def test_rate_limited_per_user(member_client, admin_client, workspace, settings):
    settings.VOICE_TOKEN_RATE_LIMIT = (3, 60)
    ready_workspace(workspace)
    assert [member_client.get(URL).status_code for _ in range(3)] == [200, 200, 200]
    limited = member_client.get(URL)
    assert limited.status_code == 429
    assert limited.json()["error"] == "rate_limited"
    assert int(limited["Retry-After"]) >= 1
    # Another user has their own budget.
    assert admin_client.get(URL).status_code == 200


def test_token_for_other_workspace_member_is_theirs(other_client, other_admin_user, other_workspace, workspace):
    """A member of another workspace only ever gets a token for their own workspace."""
    ready_workspace(workspace)
    connection = ready_workspace(other_workspace, numbers=("+15125550199",))
    body = other_client.get(URL).json()
    assert body["identity"] == f"ws{other_workspace.pk}-u{other_admin_user.pk}"
    claims = jwt.decode(body["token"], connection.api_key_secret, algorithms=["HS256"])
    assert claims["sub"] == connection.account_sid


def test_token_marks_presence(member_client, member_user, workspace):
    ready_workspace(workspace)
    assert voice.online_user_ids(workspace_id=workspace.pk, user_ids=[member_user.pk]) == []
    member_client.get(URL)
    assert voice.online_user_ids(workspace_id=workspace.pk, user_ids=[member_user.pk]) == [member_user.pk]
    # ...until the token it issued expires.
    assert voice.online_user_ids(workspace_id=workspace.pk, user_ids=[member_user.pk],
                                 now=time.time() + 3601) == []


def test_identity_parse():
    assert voice.identity_parse("client:ws3-u7") == (3, 7)
    assert voice.identity_parse("ws12-u1") == (12, 1)
    assert voice.identity_parse("client:alice") is None
    assert voice.identity_parse("ws3-u7x") is None


def test_token_query_count(member_client, workspace, django_assert_max_num_queries):
    ready_workspace(workspace)
    member_client.get(URL)  # warm the phone-system status cache
    with django_assert_max_num_queries(5):
        assert member_client.get(URL).status_code == 200


def test_normalize_uses_workspace_country(member_client, workspace):
    workspace.default_country = "GB"
    workspace.save(update_fields=["default_country"])
    assert member_client.get("/v1/voice/normalize", {"number": "020 7946 0958"}).json()["e164"] == "+442079460958"
    bad = member_client.get("/v1/voice/normalize", {"number": "12"})
    assert bad.status_code == 400 and bad.json()["message"]


def test_normalize_needs_login(client):
    assert client.get("/v1/voice/normalize", {"number": "5125550100"}).status_code == 401


def test_against_the_sandbox_the_token_says_where_its_signalling_is(member_client, workspace, settings):
    ready_workspace(workspace)
    settings.TWILIO_SANDBOX_SIGNALLING = "127.0.0.1:8766"
    settings.TWILIO_API_BASE_URL = "http://127.0.0.1:8765"
    assert member_client.get(URL).json()["chunderw"] == "127.0.0.1:8766"
    page = member_client.get("/calls/").content.decode()
    assert 'data-testid="dialer-sandbox-note"' not in page  # the sandbox answers the SDK: no offline notice


def test_with_the_real_twilio_the_token_never_points_elsewhere(member_client, workspace, settings):
    ready_workspace(workspace)
    settings.TWILIO_SANDBOX_SIGNALLING = "127.0.0.1:8766"  # left over from a local run
    settings.TWILIO_API_BASE_URL = ""
    assert "chunderw" not in member_client.get(URL).json()
