"""URLs our calls connect to are checked by the outbound guard when they are saved (production settings), with
the message next to the field and nothing saved; "Try" never fails with a 500 on an odd address."""
import pytest
from django.test import override_settings

from agents import catalogue
from agents.models import ApiAction, AuthConnector, EnvironmentSecret, EnvironmentVariable
from tests.agents.factories import EnvironmentFactory, draft_of, published_agent
from tests.agents.test_api_action_views import _post

PRODUCTION = override_settings(OUTBOUND_ALLOW_PRIVATE_TARGETS=False, OUTBOUND_ALLOW_HTTP=False)

# Private, loopback, link-local/metadata and other non-public targets, in the forms people and attackers type.
PRIVATE_URLS = [
    "https://127.0.0.1/token", "https://localhost/token", "https://api.localhost/token", "https://[::1]/token",
    "https://10.0.0.5/token", "https://172.16.3.4/token", "https://192.168.1.10/token",
    "https://169.254.169.254/latest/meta-data/", "https://metadata.google.internal/computeMetadata/v1/",
    "https://0.0.0.0/token", "https://100.64.0.1/token", "https://[fd00::1]/token", "https://[fe80::1]/token",
    "https://[::ffff:127.0.0.1]/token", "https://[::ffff:169.254.169.254]/token", "https://127.1/token",
    "https://2130706433/token", "https://0x7f000001/token", "https://0177.0.0.1:8221/x", "https://0x7f.0.0.1/token",
    "https://0251.0376.0251.0376/latest", "http://auth.example.com/token",
]


@PRODUCTION
@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_an_oauth2_token_url_to_our_own_network_is_refused_when_saved(admin_client, workspace, url):
    response = admin_client.post("/studio/environments/development/auth-connectors/", {
        "auth-name": "crm_api", "auth-kind": "oauth2_client_credentials", "auth-token_url": url,
        "auth-client_id": "abc", "auth-secret": "client-secret-1"})
    assert response.status_code == 400
    page = response.content.decode()
    assert 'data-testid="error-token_url"' in page
    assert not AuthConnector.objects.exists()


@PRODUCTION
def test_a_public_oauth2_token_url_is_saved(admin_client, workspace):
    response = admin_client.post("/studio/environments/development/auth-connectors/", {
        "auth-name": "crm_api", "auth-kind": "oauth2_client_credentials",
        "auth-token_url": "https://auth.example.com/token", "auth-client_id": "abc", "auth-secret": "s-1"})
    assert response.status_code == 302
    assert AuthConnector.objects.get().config["token_url"] == "https://auth.example.com/token"


@PRODUCTION
@pytest.mark.parametrize("name", catalogue.VENDOR_BASE_URLS)
@pytest.mark.parametrize("kind", ["secret", "variable"])
def test_a_vendor_base_url_is_checked_when_saved(admin_client, workspace, name, kind):
    url = f"/studio/environments/production/{kind}s/"
    for bad in ("https://127.0.0.1:8080/v1", "https://0177.0.0.1/v1", "https://169.254.169.254/",
                "http://api.example.com/v1", "not a url"):
        response = admin_client.post(url, {f"{kind}-name": name, f"{kind}-value": bad})
        assert response.status_code == 400, bad
        page = response.content.decode()
        assert 'data-testid="error-value"' in page and f"{name} is a vendor&#x27;s base URL" in page
    assert not EnvironmentSecret.objects.exists() and not EnvironmentVariable.objects.exists()
    response = admin_client.post(url, {f"{kind}-name": name, f"{kind}-value": "https://api.example.com/v1"})
    assert response.status_code == 302


@PRODUCTION
def test_other_settings_are_not_taken_for_urls(admin_client, workspace):
    response = admin_client.post("/studio/environments/production/variables/",
                                 {"variable-name": "API_BASE_NOTE", "variable-value": "127.0.0.1"})
    assert response.status_code == 302


@PRODUCTION
@pytest.mark.parametrize("base", ["https://0177.0.0.1:8221", "https://0x7f.1", "https://2130706433",
                                  "https://0999.0.0.1", "https://1.2.3.256"])
def test_try_with_an_odd_ipv4_address_is_refused_not_a_500(admin_client, workspace, base):
    agent = published_agent(workspace)
    env = EnvironmentFactory(workspace=workspace)
    EnvironmentVariable.objects.create(environment=env, name="API_BASE", value=base)
    action = ApiAction.objects.create(version=draft_of(agent), name="probe", url="{API_BASE}/x")
    response = admin_client.post(f"/studio/agents/{agent.pk}/api-actions/{action.pk}/try/",
                                 {"environment": env.pk, "arguments": "{}"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-ok="false"' in page and "refused" in page


@PRODUCTION
def test_an_action_url_with_an_octal_loopback_address_is_refused_when_saved(admin_client, workspace):
    agent = published_agent(workspace)
    response = admin_client.post(f"/studio/agents/{agent.pk}/actions/",
                                 _post(url="https://0177.0.0.1:8221/x", parameters=[]))
    page = response.content.decode()
    assert 'data-testid="error-url"' in page and "(127.0.0.1) are refused" in page
    assert not ApiAction.objects.exists()


@PRODUCTION
def test_the_service_refuses_a_private_token_url_whoever_calls_it(workspace):
    from django.core.exceptions import ValidationError

    from agents import services

    env = EnvironmentFactory(workspace=workspace)
    with pytest.raises(ValidationError) as info:
        services.auth_connector_save(environment=env, name="crm", kind="oauth2_client_credentials",
                                     config={"token_url": "https://0x7f.1/token", "client_id": "a"}, secret="s")
    assert "token_url" in info.value.message_dict and not AuthConnector.objects.exists()
