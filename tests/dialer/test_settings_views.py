"""Settings → Dialer views: forms with messages next to fields, htmx status polling, workspace scoping, query bounds."""
import re

import pytest
from django.utils import timezone

from telephony.models import CallerId, NumberPurchase, PhoneNumber, TwilioConnection
from tests.factories import PhoneNumberFactory, TwilioConnectionFactory, account_sid

from .settings_helpers import connect_byok

pytestmark = pytest.mark.django_db

SETTINGS = "/settings/dialer/"


def _caller_id(number, *, is_default=False):
    from telephony import services

    caller_id = services._caller_id_for_number(number, is_default=is_default)
    caller_id.save()
    return caller_id


# ---------------------------------------------------------------------------
# Access


@pytest.mark.parametrize("url", [SETTINGS, SETTINGS + "status/", SETTINGS + "numbers/", SETTINGS + "numbers/search/",
                                 SETTINGS + "numbers/purchases/", SETTINGS + "caller-ids/"])
def test_pages_are_admin_only(client, member_client, admin_client, url):
    assert client.get(url).status_code == 302
    assert member_client.get(url).status_code == 403
    assert admin_client.get(url).status_code == 200


def test_sidebar_links_for_admins_only(admin_client, member_client):
    assert 'href="/settings/dialer/caller-ids/"' in admin_client.get("/settings/dialer/numbers/").content.decode()
    page = member_client.get("/").content.decode()
    assert "/settings/dialer/numbers/" not in page and "/settings/dialer/caller-ids/" not in page


# ---------------------------------------------------------------------------
# BYOK form


def test_byok_bad_sid_and_missing_token_have_messages_next_to_fields(admin_client, workspace):
    response = admin_client.post(SETTINGS + "byok/", {"account_sid": "AC123", "auth_token": ""})
    assert response.status_code == 400
    html = response.content.decode()
    assert "An Account SID is &quot;AC&quot; followed by 32 hexadecimal characters" in html
    assert not TwilioConnection.objects.exists()
    response = admin_client.post(SETTINGS + "byok/", {"account_sid": account_sid(), "auth_token": ""})
    assert "Enter the Auth Token." in response.content.decode()
    response = admin_client.post(SETTINGS + "byok/", {"account_sid": account_sid(), "auth_token": "short"})
    assert "An Auth Token is 32 letters and digits" in response.content.decode()
    assert not TwilioConnection.objects.exists()


def test_byok_connect_then_token_is_masked_and_write_only(admin_client, workspace, twilio_sandbox,
                                                          django_capture_on_commit_callbacks):
    sid, token = twilio_sandbox.add_account()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(SETTINGS + "byok/", {"account_sid": sid, "auth_token": token})
    assert response.status_code == 302
    connection = TwilioConnection.objects.get(workspace=workspace)
    assert connection.status == "connected"
    html = admin_client.get(SETTINGS).content.decode()
    assert token not in html
    assert "••••" + token[-4:] in html
    assert 'data-state="connected"' in html
    assert "Pick a phone number" in html
    assert 'hx-trigger="every 2s"' not in html
    # The password field never renders the stored token back.
    assert re.search(r'<input type="password" name="auth_token"[^>]*>', html)
    assert f'value="{token}"' not in html


def test_status_fragment_polls_while_validating_and_stops_when_final(admin_client, workspace):
    connection = TwilioConnectionFactory(workspace=workspace, status=TwilioConnection.Status.VALIDATING)
    html = admin_client.get(SETTINGS).content.decode()
    assert 'hx-trigger="every 2s"' in html and "Validating" in html
    fragment = admin_client.get(SETTINGS + "status/").content.decode()
    assert 'hx-trigger="every 2s"' in fragment

    connection.retry_message = "Twilio is not answering; retrying… (Too Many Requests (Twilio error 20429))"
    connection.save(update_fields=["retry_message"])
    assert "Twilio is not answering; retrying…" in admin_client.get(SETTINGS + "status/").content.decode()

    connection.status = TwilioConnection.Status.ERROR
    connection.error_code, connection.error_message, connection.retry_message = 20003, "Authenticate", ""
    connection.save()
    fragment = admin_client.get(SETTINGS + "status/").content.decode()
    assert 'hx-trigger="every 2s"' not in fragment
    assert "Phone system error" in fragment and "Authenticate (Twilio error 20003)" in fragment
    # The sidebar banner comes along out of band, fresh even if the page had cached the old state.
    assert 'id="phone-system-status" hx-swap-oob="true"' in fragment
    assert "Re-enter credentials" in admin_client.get("/").content.decode()


def test_hosted_button(admin_client, workspace, settings, twilio_sandbox, django_capture_on_commit_callbacks):
    settings.TWILIO_PARENT_ACCOUNT_SID = ""
    assert "Not available on this installation" in admin_client.get(SETTINGS).content.decode()
    response = admin_client.post(SETTINGS + "hosted/", follow=True)
    assert "Hosted mode is not available" in response.content.decode()
    parent_sid, parent_token = twilio_sandbox.add_account()
    settings.TWILIO_PARENT_ACCOUNT_SID, settings.TWILIO_PARENT_AUTH_TOKEN = parent_sid, parent_token
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(SETTINGS + "hosted/")
    connection = TwilioConnection.objects.get(workspace=workspace)
    assert (connection.mode, connection.status) == ("hosted", "connected")
    assert connection.account_sid != parent_sid


def test_local_presence_toggle(admin_client, workspace):
    admin_client.post(SETTINGS + "local-presence/", {"enabled": "on"})
    assert TwilioConnection.objects.get(workspace=workspace).local_presence is True
    admin_client.post(SETTINGS + "local-presence/", {"next": "caller_ids"})
    assert TwilioConnection.objects.get(workspace=workspace).local_presence is False


# ---------------------------------------------------------------------------
# Numbers


@pytest.fixture
def connected(workspace, twilio_sandbox, django_capture_on_commit_callbacks):
    connection, sid, token = connect_byok(workspace, twilio_sandbox, django_capture_on_commit_callbacks)
    return twilio_sandbox, connection, sid


@pytest.mark.parametrize("area_code, message", [("51", "Enter a 3-digit US area code"), ("abc", "Enter a 3-digit"),
                                                ("12ab", "Enter a 3-digit US area code"),
                                                ("112", "Enter a 3-digit"), ("911", "Enter a 3-digit")])
def test_search_validates_the_area_code(admin_client, connected, area_code, message):
    html = admin_client.get(SETTINGS + "numbers/search/", {"country": "US", "area_code": area_code}).content.decode()
    assert message in html
    assert 'data-testid="search-results"' not in html


def test_an_area_code_without_numbers_says_so(admin_client, connected):
    html = admin_client.get(SETTINGS + "numbers/search/", {"country": "US", "area_code": "999"}).content.decode()
    assert "No numbers in area code 999." in html


def test_search_contains_digits_only(admin_client, connected):
    html = admin_client.get(SETTINGS + "numbers/search/",
                            {"country": "US", "area_code": "512", "contains": "5x"}).content.decode()
    assert "Use digits only" in html


def test_search_and_provision_through_the_pages(admin_client, workspace, connected):
    sandbox, connection, sid = connected
    html = admin_client.get(SETTINGS + "numbers/search/", {"country": "US", "area_code": "512"}).content.decode()
    assert 'data-testid="search-results"' in html
    first = re.search(r'name="phone_number" value="(\+1512\d{7})"', html).group(1)
    assert "Austin" in html
    data = {"phone_number": first, "country": "US", "area_code": "512", "locality": "Austin", "region": "TX"}
    response = admin_client.post(SETTINGS + "numbers/provision/", data)
    # First, what is bought, where, and who pays; nothing is bought yet.
    assert response.status_code == 200 and 'data-testid="provision-confirm"' in response.content.decode()
    assert "Austin, TX" in response.content.decode() and connection.account_sid in response.content.decode()
    assert not PhoneNumber.objects.exists() and not NumberPurchase.objects.exists()
    response = admin_client.post(SETTINGS + "numbers/provision/", {**data, "confirmed": "on"})
    assert response.status_code == 302 and response["Location"] == "/settings/dialer/numbers/"
    page = admin_client.get(SETTINGS + "numbers/").content.decode()
    assert first in page and "Primary" in page
    assert "Pick a phone number" not in page  # banner gone
    assert CallerId.objects.get(workspace=workspace).phone_number == first


def test_provision_unavailable_number_says_so_and_records_nothing(admin_client, connected):
    response = admin_client.post(SETTINGS + "numbers/provision/",
                                 {"phone_number": "+15005550000", "country": "US", "area_code": "500",
                                  "confirmed": "on"})
    assert response.status_code == 409
    assert "+15005550000 is no longer available (Twilio error 21422)" in response.content.decode()
    assert not PhoneNumber.objects.exists() and not NumberPurchase.objects.exists()


def test_provision_validates_the_number(admin_client, connected):
    response = admin_client.post(SETTINGS + "numbers/provision/", {"phone_number": "+44 20 7183 8750"})
    assert response.status_code == 400
    assert "Only US and Canadian numbers" in response.content.decode()
    response = admin_client.post(SETTINGS + "numbers/provision/", {"phone_number": "12"})
    assert response.status_code == 400


def test_provision_when_twilio_is_busy_continues_in_the_background(admin_client, connected,
                                                                   django_capture_on_commit_callbacks):
    sandbox, connection, sid = connected
    sandbox.inject_fault("POST", r"/IncomingPhoneNumbers\.json$", kind="429")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(SETTINGS + "numbers/provision/", {"phone_number": "+15005550006", "confirmed": "on"},
                                     follow=True)
    assert "Twilio is not answering; retrying…" in response.content.decode()
    assert PhoneNumber.objects.get().phone_number == "+15005550006"  # the task (eager here) finished it


def test_release_needs_confirmation(admin_client, workspace, connected):
    sandbox, connection, sid = connected
    admin_client.post(SETTINGS + "numbers/provision/", {"phone_number": "+15005550006", "confirmed": "on"})
    number = PhoneNumber.objects.get()
    assert "Type <code>+15005550006</code> to confirm" in admin_client.get(
        f"{SETTINGS}numbers/{number.pk}/release/").content.decode()
    response = admin_client.post(f"{SETTINGS}numbers/{number.pk}/release/", {"confirm": "yes"})
    assert response.status_code == 400 and PhoneNumber.objects.exists()
    response = admin_client.post(f"{SETTINGS}numbers/{number.pk}/release/", {"confirm": "+15005550006"})
    assert response.status_code == 302
    assert not PhoneNumber.objects.exists() and not sandbox.state["incoming_numbers"][sid]


# ---------------------------------------------------------------------------
# Caller IDs


def test_caller_id_add_shows_the_code_and_validates(admin_client, workspace, connected):
    sandbox, connection, sid = connected
    response = admin_client.post(SETTINGS + "caller-ids/add/", {"phone_number": "12345"})
    assert response.status_code == 400
    assert "not a valid phone number" in response.content.decode()
    response = admin_client.post(SETTINGS + "caller-ids/add/", {"phone_number": "(415) 555-0123"}, follow=True)
    html = response.content.decode()
    caller_id = CallerId.objects.get()
    assert caller_id.phone_number == "+14155550123"
    assert f"enter the code {caller_id.validation_code}" in html
    assert "Waiting for verification" in html
    sandbox.complete_validation(sid, "+14155550123")
    html = admin_client.post(SETTINGS + "caller-ids/check/", follow=True).content.decode()
    assert "1 number(s) verified." in html
    response = admin_client.post(SETTINGS + "caller-ids/add/", {"phone_number": "+14155550123"})
    assert "already one of your caller IDs" in response.content.decode()


def test_caller_id_default_and_remove(admin_client, workspace):
    TwilioConnectionFactory(workspace=workspace)
    a = _caller_id(PhoneNumberFactory(workspace=workspace), is_default=True)
    b = CallerId.objects.create(workspace=workspace, phone_number="+14155550199", kind="verified",
                                verified_at=timezone.now())
    admin_client.post(f"{SETTINGS}caller-ids/{b.pk}/default/")
    assert CallerId.objects.get(is_default=True) == b
    assert "Remove +14155550199?" in admin_client.get(f"{SETTINGS}caller-ids/{b.pk}/remove/").content.decode()
    admin_client.post(f"{SETTINGS}caller-ids/{b.pk}/remove/")
    assert list(CallerId.objects.all()) == [a]
    assert CallerId.objects.get().is_default


# ---------------------------------------------------------------------------
# Workspace scoping: another workspace's ids are 404, and its data never shows


@pytest.fixture
def victim(workspace):
    TwilioConnectionFactory(workspace=workspace)
    number = PhoneNumberFactory(workspace=workspace, phone_number="+15125550177", is_primary=True)
    caller_id = _caller_id(number, is_default=True)
    verified = CallerId.objects.create(workspace=workspace, phone_number="+14155550177", kind="verified",
                                       verified_at=timezone.now())
    purchase = NumberPurchase.objects.create(workspace=workspace, phone_number="+15125550178")
    return number, caller_id, verified, purchase


@pytest.mark.parametrize("method, path", [
    ("post", "numbers/{number}/primary/"),
    ("get", "numbers/{number}/release/"),
    ("post", "numbers/{number}/release/"),
    ("post", "numbers/purchases/{purchase}/cancel/"),
    ("post", "caller-ids/{verified}/default/"),
    ("get", "caller-ids/{verified}/remove/"),
    ("post", "caller-ids/{verified}/remove/"),
])
def test_other_workspace_ids_are_404(other_client, victim, twilio_sandbox, method, path):
    number, caller_id, verified, purchase = victim
    url = SETTINGS + path.format(number=number.pk, verified=verified.pk, purchase=purchase.pk)
    response = getattr(other_client, method)(url, {"confirm": number.phone_number})
    assert response.status_code == 404
    assert PhoneNumber.objects.filter(pk=number.pk, is_primary=True).exists()
    assert CallerId.objects.filter(pk=verified.pk).exists()
    assert NumberPurchase.objects.filter(pk=purchase.pk).exists()
    assert not twilio_sandbox.requests


def test_other_workspace_data_never_shows(other_client, victim, workspace):
    number, caller_id, verified, purchase = victim
    for url in [SETTINGS, SETTINGS + "numbers/", SETTINGS + "caller-ids/", SETTINGS + "status/",
                SETTINGS + "numbers/purchases/"]:
        html = other_client.get(url).content.decode()
        assert number.phone_number not in html and verified.phone_number not in html
        assert purchase.phone_number not in html
        assert workspace.twilio_connection.account_sid not in html
    # Posting another workspace's number as a caller ID to verify, or to buy, only acts on one's own workspace.
    other_client.post(SETTINGS + "local-presence/", {"enabled": "on"})
    assert TwilioConnection.objects.get(workspace=workspace).local_presence is False


# ---------------------------------------------------------------------------
# Query bounds with 200 numbers and caller IDs


@pytest.fixture
def many_numbers(workspace):
    TwilioConnectionFactory(workspace=workspace)
    numbers = PhoneNumberFactory.create_batch(200, workspace=workspace)
    CallerId.objects.bulk_create([_caller_id_unsaved(n, i == 0) for i, n in enumerate(numbers)])
    NumberPurchase.objects.bulk_create([NumberPurchase(workspace=workspace, phone_number=f"+1737555{i:04d}")
                                        for i in range(20)])
    return numbers


def _caller_id_unsaved(number, is_default):
    from telephony import services

    return services._caller_id_for_number(number, is_default=is_default)


@pytest.mark.parametrize("url, marker, count", [
    (SETTINGS, "200 numbers", 1),
    (SETTINGS + "numbers/", 'data-testid="number-row"', 200),
    (SETTINGS + "numbers/", 'data-testid="purchase-row"', 20),
    (SETTINGS + "caller-ids/", 'data-testid="caller-id-row"', 200),
    (SETTINGS + "numbers/purchases/", 'data-testid="purchase-row"', 20),
    (SETTINGS + "status/", 'data-state="connected"', 1),
])
def test_pages_run_in_bounded_queries(admin_client, many_numbers, django_assert_max_num_queries, url, marker, count):
    admin_client.get(url)  # warm the banner cache like any page view before
    with django_assert_max_num_queries(10):
        response = admin_client.get(url)
    assert response.status_code == 200
    assert response.content.decode().count(marker) == count


def test_search_when_twilio_is_down_or_rate_limited_says_so(admin_client, connected):
    sandbox, connection, sid = connected
    sandbox.inject_fault("GET", r"/AvailablePhoneNumbers/", kind="500")
    html = admin_client.get(SETTINGS + "numbers/search/", {"country": "US", "area_code": "512"}).content.decode()
    assert "Twilio is not answering" in html and 'data-testid="search-results"' not in html
    sandbox.inject_fault("GET", r"/AvailablePhoneNumbers/", kind="429")
    html = admin_client.get(SETTINGS + "numbers/search/", {"country": "US", "area_code": "737"}).content.decode()
    assert "Twilio is not answering" in html
    # Twilio back: the same query answers (failures were not cached).
    html = admin_client.get(SETTINGS + "numbers/search/", {"country": "US", "area_code": "512"}).content.decode()
    assert 'data-testid="search-results"' in html


def test_search_before_connecting_says_what_to_do(admin_client):
    html = admin_client.get(SETTINGS + "numbers/search/", {"country": "US", "area_code": "512"}).content.decode()
    assert "Connect Twilio first" in html


def test_a_check_that_never_runs_says_so_and_can_be_started_again(admin_client, workspace,
                                                                   django_capture_on_commit_callbacks):
    """No worker consuming the queue: "validating" would spin forever. After a few minutes without progress the card
    says what is wrong and offers "Check again" (which queues a new check)."""
    from datetime import timedelta

    connection = TwilioConnectionFactory(workspace=workspace, status=TwilioConnection.Status.VALIDATING)
    fragment = admin_client.get(SETTINGS + "status/").content.decode()
    assert 'data-testid="validation-stalled"' not in fragment and "Check again" not in fragment

    TwilioConnection.objects.filter(pk=connection.pk).update(updated_at=timezone.now() - timedelta(minutes=10))
    fragment = admin_client.get(SETTINGS + "status/").content.decode()
    assert 'data-testid="validation-stalled"' in fragment and "background worker" in fragment
    assert "Check again" in fragment and 'hx-trigger="every 2s"' in fragment  # still polling, in case it runs
    with django_capture_on_commit_callbacks() as callbacks:
        assert admin_client.post(SETTINGS + "check/").status_code == 302
    assert len(callbacks) >= 1  # a new check queued
    fragment = admin_client.get(SETTINGS + "status/").content.decode()
    assert 'data-testid="validation-stalled"' not in fragment
