"""Local presence: the one function that picks an outgoing call's caller ID, over a table of cases."""
import pytest

from telephony import services
from telephony.models import CallerId, TwilioConnection
from tests.factories import PhoneNumberFactory

pytestmark = pytest.mark.django_db

# Caller IDs of the workspace in these cases: Austin (TX, default), Dallas (TX), Manhattan (NY),
# Toronto (ON), and a pending external number in San Francisco (not usable).
AUSTIN, DALLAS, MANHATTAN, TORONTO, SF_PENDING, SF_VERIFIED = (
    "+15125550100", "+12145550100", "+12125550100", "+14165550100", "+14155550100", "+16505550100")


@pytest.fixture
def caller_ids(workspace):
    made = {}
    for e164, region, country, default in [(AUSTIN, "TX", "US", True), (DALLAS, "TX", "US", False),
                                           (MANHATTAN, "NY", "US", False), (TORONTO, "ON", "CA", False)]:
        number = PhoneNumberFactory(workspace=workspace, phone_number=e164, is_primary=default, region=region,
                                    iso_country=country)
        made[e164] = services._caller_id_for_number(number, is_default=default)
        made[e164].save()
    made[SF_PENDING] = CallerId.objects.create(workspace=workspace, phone_number=SF_PENDING, kind="verified",
                                               country="US", region="CA", validation_code="123456")
    return made


@pytest.mark.parametrize(
    "local_presence, to_number, requested, expected",
    [
        # Off: always the default, whoever is called.
        (False, "+12125550199", None, AUSTIN),
        (False, "+14165550199", None, AUSTIN),
        # On: same area code first.
        (True, "+12125550199", None, MANHATTAN),   # NY 212 → Manhattan
        (True, "+12145550199", None, DALLAS),      # TX 214 → Dallas (area code beats the default in the same state)
        (True, "+15125550199", None, AUSTIN),      # TX 512 → Austin
        (True, "+14165550199", None, TORONTO),     # ON 416 → Toronto
        # Then the same state or province.
        (True, "+17375550199", None, AUSTIN),      # TX 737: no 737 caller ID; TX → the default is in TX
        (True, "+19725550199", None, AUSTIN),      # TX 972: prefers the default among TX numbers
        (True, "+13475550199", None, MANHATTAN),   # NY 347 → the NY number
        (True, "+16475550199", None, TORONTO),     # ON 647 → the Ontario number
        # Then the default.
        (True, "+13055550199", None, AUSTIN),      # FL: nothing in Florida
        (True, "+14155550199", None, AUSTIN),      # CA 415: the SF number is not verified yet
        (True, "+442071838750", None, AUSTIN),     # outside North America
        (True, "not a number", None, AUSTIN),
        # An explicit choice from "Call from" wins.
        (True, "+12125550199", DALLAS, DALLAS),
        (False, "+12125550199", TORONTO, TORONTO),
    ],
)
def test_caller_id_choose(workspace, caller_ids, local_presence, to_number, requested, expected):
    TwilioConnection.objects.create(workspace=workspace, local_presence=local_presence)
    chosen = services.caller_id_choose(workspace=workspace, to_number=to_number, requested=requested)
    assert chosen.phone_number == expected


def test_requested_caller_id_by_id_and_unknown(workspace, caller_ids):
    chosen = services.caller_id_choose(workspace=workspace, to_number="+12125550199",
                                       requested=str(caller_ids[TORONTO].pk))
    assert chosen.phone_number == TORONTO
    with pytest.raises(services.NoCallerId):
        services.caller_id_choose(workspace=workspace, to_number="+12125550199", requested=SF_PENDING)
    with pytest.raises(services.NoCallerId):
        services.caller_id_choose(workspace=workspace, to_number="+12125550199", requested="+19995550100")


def test_verified_external_number_takes_part(workspace, caller_ids):
    from django.utils import timezone

    CallerId.objects.create(workspace=workspace, phone_number=SF_VERIFIED, kind="verified", country="US",
                            region="CA", verified_at=timezone.now())
    TwilioConnection.objects.create(workspace=workspace, local_presence=True)
    assert services.caller_id_choose(workspace=workspace, to_number="+16505550199").phone_number == SF_VERIFIED
    assert services.caller_id_choose(workspace=workspace, to_number="+14155550199").phone_number == SF_VERIFIED


def test_no_caller_id_at_all(workspace, other_workspace, caller_ids):
    with pytest.raises(services.NoCallerId):
        services.caller_id_choose(workspace=other_workspace, to_number="+15125550199")


def test_caller_id_of_another_workspace_is_never_chosen(workspace, other_workspace, caller_ids):
    number = PhoneNumberFactory(workspace=other_workspace, phone_number="+12125550123")
    services._caller_id_for_number(number, is_default=True).save()
    with pytest.raises(services.NoCallerId):
        services.caller_id_choose(workspace=workspace, to_number="+12125550199", requested="+12125550123")
