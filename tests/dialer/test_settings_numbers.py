"""Phone numbers and caller IDs against the sandbox: search (cached), idempotent provisioning, release, verification."""
import pytest

from telephony import errors, services, tasks
from telephony.models import CallerId, NumberPurchase, PhoneNumber
from telephony.selectors import caller_ids_for_dialer, phone_system_status

from .settings_helpers import connect_byok

pytestmark = pytest.mark.django_db


@pytest.fixture
def connected(workspace, twilio_sandbox, django_capture_on_commit_callbacks):
    connection, sid, token = connect_byok(workspace, twilio_sandbox, django_capture_on_commit_callbacks)
    return twilio_sandbox, connection, sid


def _owned(sandbox, sid):
    return sorted(n["phone_number"] for n in sandbox.state["incoming_numbers"][sid].values())


def _purchase_posts(sandbox):
    return sandbox.requests_to(r"/IncomingPhoneNumbers\.json$", "POST")


def _provision(workspace, number, **kw):
    purchase = services.number_purchase_start(workspace=workspace, phone_number=number)
    return services.number_provision(purchase_id=purchase.pk, **kw)


def test_search_by_area_code_is_cached(workspace, connected):
    sandbox, connection, sid = connected
    results = services.available_numbers_search(workspace=workspace, country="US", area_code="512")
    assert results
    assert all(n.phone_number.startswith("+1512") for n in results)
    assert all(n.region == "TX" and n.capabilities.get("voice") for n in results)
    again = services.available_numbers_search(workspace=workspace, country="US", area_code="512")
    assert [n.phone_number for n in again] == [n.phone_number for n in results]
    assert len(sandbox.requests_to(r"/AvailablePhoneNumbers/US/Local\.json$")) == 1
    services.available_numbers_search(workspace=workspace, country="US", area_code="512", contains="55")
    services.available_numbers_search(workspace=workspace, country="CA", area_code="416")
    assert len(sandbox.requests_to(r"/AvailablePhoneNumbers/")) == 3


def test_search_needs_a_connected_account(workspace):
    with pytest.raises(services.DialerError, match="Connect Twilio"):
        services.available_numbers_search(workspace=workspace, country="US", area_code="512")


def test_provision_buys_points_at_the_app_and_registers_a_caller_id(workspace, connected):
    sandbox, connection, sid = connected
    chosen = services.available_numbers_search(workspace=workspace, country="US", area_code="512")[0]
    assert phone_system_status(workspace_id=workspace.pk).banner == "Pick a phone number"

    number = _provision(workspace, chosen.phone_number, locality=chosen.locality, region=chosen.region)

    assert _owned(sandbox, sid) == [chosen.phone_number]
    remote = sandbox.state["incoming_numbers"][sid][number.sid]
    assert remote["voice_application_sid"] == connection.twiml_app_sid
    assert number.is_primary and number.region == "TX" and number.locality == chosen.locality
    caller_id = CallerId.objects.get(workspace=workspace)
    assert (caller_id.phone_number, caller_id.kind, caller_id.is_default) == (chosen.phone_number, "provisioned", True)
    assert [c.phone_number for c in caller_ids_for_dialer(workspace=workspace)] == [chosen.phone_number]
    assert NumberPurchase.objects.get().state == NumberPurchase.State.COMPLETED
    status = phone_system_status(workspace_id=workspace.pk)
    assert status.state == "ready" and status.banner == ""


def test_double_click_buys_once(workspace, connected):
    sandbox, connection, sid = connected
    chosen = services.available_numbers_search(workspace=workspace, country="US", area_code="512")[0].phone_number
    first = _provision(workspace, chosen)
    second = _provision(workspace, chosen)
    tasks.provision_number.delay(NumberPurchase.objects.get().pk)
    assert first.pk == second.pk
    assert len(_purchase_posts(sandbox)) == 1
    assert PhoneNumber.objects.count() == 1 and CallerId.objects.count() == 1 and NumberPurchase.objects.count() == 1


def test_a_purchase_in_flight_is_not_started_again(workspace, connected):
    sandbox, connection, sid = connected
    purchase = services.number_purchase_start(workspace=workspace, phone_number="+15005550006")
    from datetime import timedelta

    from django.utils import timezone

    NumberPurchase.objects.filter(pk=purchase.pk).update(state=NumberPurchase.State.PURCHASING,
                                                         lease_until=timezone.now() + timedelta(seconds=30))
    with pytest.raises(services.PurchaseInProgress):
        services.number_provision(purchase_id=purchase.pk)
    assert not _purchase_posts(sandbox)


def test_unavailable_number_gives_a_clear_error_and_records_nothing(workspace, connected):
    sandbox, connection, sid = connected
    with pytest.raises(errors.NumberUnavailable) as info:
        _provision(workspace, "+15005550000")
    assert info.value.code == errors.NUMBER_UNAVAILABLE
    assert not PhoneNumber.objects.exists() and not CallerId.objects.exists()
    assert not NumberPurchase.objects.exists()


def test_ambiguous_purchase_looks_at_the_account_before_buying_again(workspace, connected):
    sandbox, connection, sid = connected
    chosen = services.available_numbers_search(workspace=workspace, country="US", area_code="512")[0].phone_number
    sandbox.inject_fault("POST", r"/IncomingPhoneNumbers\.json$", kind="slow", delay=2.5)
    with pytest.raises(errors.TwilioTransientError) as info:
        _provision(workspace, chosen)
    assert info.value.ambiguous
    purchase = NumberPurchase.objects.get()
    assert purchase.state == NumberPurchase.State.PURCHASING and purchase.lease_until is None
    assert not PhoneNumber.objects.exists()
    assert _owned(sandbox, sid) == [chosen]  # Twilio did buy it

    tasks.provision_number.delay(purchase.pk)  # the retry

    assert len(_purchase_posts(sandbox)) == 1
    assert _owned(sandbox, sid) == [chosen]
    number = PhoneNumber.objects.get()
    assert number.phone_number == chosen
    assert CallerId.objects.get().phone_number == chosen


def test_worker_killed_mid_purchase_ends_with_one_number(workspace, connected):
    sandbox, connection, sid = connected
    # A worker marked the purchase, sent the order (Twilio bought the number) and died before recording it;
    # its lease has run out.
    sandbox.add_incoming_number(sid, "+15125550142")
    purchase = services.number_purchase_start(workspace=workspace, phone_number="+15125550142")
    NumberPurchase.objects.filter(pk=purchase.pk).update(state=NumberPurchase.State.PURCHASING, attempts=1)
    tasks.provision_number.delay(purchase.pk)
    assert not _purchase_posts(sandbox)
    assert PhoneNumber.objects.get().phone_number == "+15125550142"
    remote = next(iter(sandbox.state["incoming_numbers"][sid].values()))
    assert remote["voice_application_sid"] == connection.twiml_app_sid


def test_rate_limited_purchase_is_retried_by_the_task(workspace, connected):
    sandbox, connection, sid = connected
    chosen = services.available_numbers_search(workspace=workspace, country="US", area_code="512")[0].phone_number
    sandbox.inject_fault("POST", r"/IncomingPhoneNumbers\.json$", kind="429")
    with pytest.raises(errors.TwilioTransientError) as info:
        _provision(workspace, chosen)
    assert not info.value.ambiguous
    purchase = NumberPurchase.objects.get()
    assert purchase.state == NumberPurchase.State.PENDING and "Too Many Requests" in purchase.last_error
    tasks.provision_number.delay(purchase.pk)
    assert _owned(sandbox, sid) == [chosen]
    assert PhoneNumber.objects.count() == 1


def test_set_primary_and_release(workspace, connected):
    sandbox, connection, sid = connected
    found = services.available_numbers_search(workspace=workspace, country="US", area_code="512")
    first = _provision(workspace, found[0].phone_number)
    second = _provision(workspace, found[1].phone_number)
    assert PhoneNumber.objects.get(pk=first.pk).is_primary and not PhoneNumber.objects.get(pk=second.pk).is_primary

    services.number_set_primary(workspace=workspace, number_id=second.pk)
    assert list(PhoneNumber.objects.filter(is_primary=True)) == [second]
    assert CallerId.objects.get(is_default=True).phone_number == second.phone_number

    services.number_release(workspace=workspace, number_id=second.pk)
    assert _owned(sandbox, sid) == [first.phone_number]
    assert list(PhoneNumber.objects.all()) == [first]
    assert PhoneNumber.objects.get().is_primary
    assert CallerId.objects.get().is_default and CallerId.objects.get().phone_number == first.phone_number
    services.number_release(workspace=workspace, number_id=first.pk)
    assert phone_system_status(workspace_id=workspace.pk).banner == "Pick a phone number"


def test_external_caller_id_verification(workspace, connected):
    sandbox, connection, sid = connected
    caller_id = services.caller_id_add_external(workspace=workspace, phone_number="+14155550123",
                                                friendly_name="Alice's cell")
    assert caller_id.validation_code and len(caller_id.validation_code) == 6
    assert caller_id.is_pending and caller_id.region == "CA"
    assert list(caller_ids_for_dialer(workspace=workspace)) == []
    assert services.caller_ids_check(workspace=workspace) == 0

    sandbox.complete_validation(sid, "+14155550123")  # the person typed the code
    assert tasks.check_caller_ids.delay(workspace.pk).get() == 1
    caller_id.refresh_from_db()
    assert caller_id.verified_at and caller_id.outgoing_caller_id_sid.startswith("PN")
    assert caller_id.is_default  # the only usable one
    assert [c.pk for c in caller_ids_for_dialer(workspace=workspace)] == [caller_id.pk]

    with pytest.raises(services.DialerError, match="already"):
        services.caller_id_add_external(workspace=workspace, phone_number="+14155550123")

    services.caller_id_remove(workspace=workspace, caller_id_id=caller_id.pk)
    assert not CallerId.objects.exists()
    assert not [c for c in sandbox.state["outgoing_caller_ids"][sid].values() if not c.get("deleted")]


def test_already_verified_number_is_adopted(workspace, connected):
    sandbox, connection, sid = connected
    sandbox.add_outgoing_caller_id(sid, "+14155550124")
    caller_id = services.caller_id_add_external(workspace=workspace, phone_number="+14155550124")
    assert caller_id.is_usable


def test_invalid_number_refused_by_twilio_records_nothing(workspace, connected):
    with pytest.raises(errors.InvalidPhoneNumber):
        services.caller_id_add_external(workspace=workspace, phone_number="+15005550001")
    assert not CallerId.objects.exists()


def test_provisioned_caller_id_cannot_be_removed_and_pending_cannot_be_default(workspace, connected):
    sandbox, connection, sid = connected
    number = _provision(workspace, "+15005550006")
    provisioned = CallerId.objects.get(phone_number_ref=number)
    with pytest.raises(services.DialerError, match="release"):
        services.caller_id_remove(workspace=workspace, caller_id_id=provisioned.pk)
    pending = services.caller_id_add_external(workspace=workspace, phone_number="+14155550125")
    with pytest.raises(services.DialerError, match="Verify"):
        services.caller_id_set_default(workspace=workspace, caller_id_id=pending.pk)


def test_periodic_task_checks_pending_verifications(workspace, connected):
    sandbox, connection, sid = connected
    caller_id = services.caller_id_add_external(workspace=workspace, phone_number="+14155550126")
    sandbox.complete_validation(sid, "+14155550126")
    tasks.revalidate_all_connections.delay()
    caller_id.refresh_from_db()
    assert caller_id.verified_at is not None


def test_purchase_left_by_a_dead_request_is_resumed_by_the_periodic_task(workspace, connected):
    """The page buys in the request: if that process dies after sending the order (or its retries run out), nothing
    else would finish it and the row would say "retrying…" forever. The periodic task looks, and records it."""
    from datetime import timedelta

    from django.utils import timezone

    sandbox, connection, sid = connected
    sandbox.add_incoming_number(sid, "+15125550143")  # Twilio bought it; the answer never reached us
    stale = services.number_purchase_start(workspace=workspace, phone_number="+15125550143")
    busy = services.number_purchase_start(workspace=workspace, phone_number="+15125550144")
    long_ago = timezone.now() - timedelta(minutes=10)
    NumberPurchase.objects.filter(pk=stale.pk).update(state=NumberPurchase.State.PURCHASING, attempts=1,
                                                      lease_until=long_ago, updated_at=long_ago)
    # One being bought right now (lease running) is left alone.
    NumberPurchase.objects.filter(pk=busy.pk).update(state=NumberPurchase.State.PURCHASING, attempts=1,
                                                     lease_until=timezone.now() + timedelta(seconds=30))

    tasks.revalidate_all_connections.delay()

    assert not _purchase_posts(sandbox)
    assert list(PhoneNumber.objects.values_list("phone_number", flat=True)) == ["+15125550143"]
    assert NumberPurchase.objects.get(pk=stale.pk).state == NumberPurchase.State.COMPLETED
    assert NumberPurchase.objects.get(pk=busy.pk).state == NumberPurchase.State.PURCHASING


def test_releasing_the_primary_number_hands_primary_and_default_caller_id_to_the_same_number(workspace, connected):
    from django.utils import timezone

    sandbox, connection, sid = connected
    found = services.available_numbers_search(workspace=workspace, country="US", area_code="512")
    first = _provision(workspace, found[0].phone_number)
    second = _provision(workspace, found[1].phone_number)
    # A verified external number that sorts before the remaining number.
    CallerId.objects.create(workspace=workspace, phone_number="+12065550111", kind=CallerId.Kind.VERIFIED,
                            verified_at=timezone.now())

    services.number_release(workspace=workspace, number_id=first.pk)

    assert PhoneNumber.objects.get(is_primary=True) == second
    assert CallerId.objects.get(is_default=True).phone_number == second.phone_number


def test_ring_the_dialer_points_an_imported_number_at_the_twiml_app(workspace, twilio_sandbox,
                                                                    django_capture_on_commit_callbacks,
                                                                    admin_client, other_client, member_client):
    connection, sid, _ = connect_byok(workspace, twilio_sandbox, django_capture_on_commit_callbacks,
                                      numbers=["+15125550177"])
    number = PhoneNumber.objects.get(workspace=workspace, phone_number="+15125550177")
    record = twilio_sandbox.state["incoming_numbers"][sid][number.sid]
    assert record["voice_application_sid"] != connection.twiml_app_sid  # imported with its own configuration
    url = f"/settings/dialer/numbers/{number.pk}/route-to-dialer/"
    assert member_client.post(url).status_code == 403
    assert other_client.post(url).status_code == 404
    assert record["voice_application_sid"] != connection.twiml_app_sid
    response = admin_client.post(url, follow=True)
    assert "now ring your team&#x27;s browser dialers" in response.content.decode()
    assert twilio_sandbox.state["incoming_numbers"][sid][number.sid]["voice_application_sid"] == connection.twiml_app_sid


def test_ring_the_dialer_says_what_twilio_answered(workspace, connected, admin_client):
    sandbox, connection, sid = connected
    number = _provision(workspace, "+15005550006")
    sandbox.inject_fault("POST", r"/IncomingPhoneNumbers/PN", kind="500", times=1)
    response = admin_client.post(f"/settings/dialer/numbers/{number.pk}/route-to-dialer/", follow=True)
    assert "Twilio is not answering; try again in a moment." in response.content.decode()
