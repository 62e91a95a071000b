"""The campaigns pages: contact import (preview, per-row report, merge, DNC, time zones, fields), search, export,
a campaign's creation with its limits, the actions, the progress page (counts, chart, history) and its CSV."""
import csv
import io
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from campaigns import services
from campaigns.models import Campaign, CampaignContact, Contact, ContactList
from telephony.models import DoNotCallNumber
from tests.campaigns.helpers import answer_placed_calls, campaign_setup
from tests.factories import MembershipFactory, UserFactory
from workspaces.models import Membership

pytestmark = pytest.mark.django_db

CSV = ("Phone,Name,First name,Company\n"
       "(212) 555-0110,Jane Roe,Jane,Acme\n"
       "+1 212 555 0110,,Janet,\n"          # the same number: merged
       "213-555-0111,John Doe,John,Initech\n"
       "not a number,Bad Row,,\n"
       "+13125550112,Do Not,Dee,\n")


def _client(workspace):
    user = UserFactory()
    MembershipFactory(workspace=workspace, user=user, role=Membership.Role.ADMIN)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def setup(settings, twilio_sandbox):
    settings.CAMPAIGNS_CALLS_PER_SECOND = 1000
    o, campaign = campaign_setup(sandbox=twilio_sandbox, numbers=[f"+1212555{n:04d}" for n in range(120, 124)])
    return o, campaign, _client(o.workspace)


def test_an_import_is_previewed_row_by_row_then_merges_flags_and_keeps_fields(setup):
    o, _, client = setup
    DoNotCallNumber.objects.create(workspace=o.workspace, phone_number="+13125550112")
    contact_list = ContactList.objects.create(workspace=o.workspace, name="Fair")
    url = f"/campaigns/lists/{contact_list.pk}/"

    preview = client.post(url, {"file": SimpleUploadedFile("leads.csv", CSV.encode())})

    page = preview.content.decode()
    assert preview.status_code == 200 and Contact.objects.filter(contact_list=contact_list).count() == 0
    assert "Preview: 2 new" in " ".join(page.split()) and "1 merged" in page and "1 do-not-call" in page
    assert "1 invalid" in page and "not a number is not a valid phone number" in page or "not a number" in page
    text = preview.context["form"].initial["text"]

    client.post(url, {"text": text, "confirm": "1"})

    contacts = {c.phone_number: c for c in Contact.objects.filter(contact_list=contact_list)}
    assert set(contacts) == {"+12125550110", "+12135550111", "+13125550112"}
    jane = contacts["+12125550110"]
    assert jane.name == "Jane Roe" and jane.fields == {"first_name": "Janet", "company": "Acme"}
    assert jane.time_zone == "America/New_York" and contacts["+12135550111"].time_zone == "America/Los_Angeles"
    assert contacts["+13125550112"].do_not_call

    # Importing again merges into the same contacts.
    client.post(url, {"text": text, "confirm": "1"})
    assert Contact.objects.filter(contact_list=contact_list).count() == 3

    found = client.get(url, {"q": "initech"})
    assert [c.phone_number for c in found.context["contacts"]] == ["+12135550111"]
    exported = list(csv.reader(io.StringIO(b"".join(client.get(url, {"format": "csv"}).streaming_content).decode())))
    assert exported[0] == ["phone", "name", "time_zone", "do_not_call", "company", "first_name"]
    assert ["+12125550110", "Jane Roe", "America/New_York", "", "Acme", "Janet"] in exported


def test_a_file_without_a_phone_column_is_refused_with_a_clear_message(setup):
    o, _, client = setup
    contact_list = ContactList.objects.create(workspace=o.workspace, name="Fair")
    page = client.post(f"/campaigns/lists/{contact_list.pk}/",
                       {"file": SimpleUploadedFile("x.csv", b"name,email\nA,a@example.com\n")})
    assert "needs a column named phone" in page.content.decode()


def test_a_campaign_cannot_ask_for_more_calls_at_once_than_the_workspace(setup):
    o, campaign, client = setup
    response = client.post("/campaigns/new/", {
        "name": "Too many", "contact_list": campaign.contact_list_id, "worked_by": "agent",
        "agent": campaign.agent_id, "environment": campaign.environment_id, "version_mode": "draft",
        "caller_id_rule": "fixed", "caller_id": "+15125550100", "window_days": ["1", "2"],
        "window_start": "09:00", "window_end": "17:00", "max_concurrent": "500", "max_attempts": "3",
        "retry_no_answer_minutes": "60", "retry_busy_minutes": "15"})
    assert response.status_code == 200
    assert "Between 1 and 20" in response.content.decode()
    ok = client.post("/campaigns/new/", {
        "name": "Fine", "contact_list": campaign.contact_list_id, "worked_by": "agent",
        "agent": campaign.agent_id, "environment": campaign.environment_id, "version_mode": "draft",
        "caller_id_rule": "fixed", "caller_id": "+15125550100", "window_days": ["1", "2"],
        "window_start": "09:00", "window_end": "17:00", "max_concurrent": "5", "max_attempts": "3",
        "retry_no_answer_minutes": "60", "retry_busy_minutes": "15"})
    assert ok.status_code == 302
    created = Campaign.objects.get(name="Fine")
    assert created.window_days == [1, 2] and created.caller_id == "+15125550100"


def test_the_progress_page_counts_states_draws_the_chart_and_shows_history_in_fixed_queries(
        setup, django_assert_max_num_queries):
    _, campaign, client = setup
    client.post(f"/campaigns/{campaign.pk}/start/")
    assert Campaign.objects.get(pk=campaign.pk).status == "running"
    now = datetime.now(dt_timezone.utc)
    services.campaigns_tick(now=now)
    answer_placed_calls()
    services.campaigns_tick(now=now + timedelta(seconds=5))

    with django_assert_max_num_queries(20) as first:
        page = client.get(f"/campaigns/{campaign.pk}/")
    html = page.content.decode()
    assert 'data-testid="count-answered">2<' in html and 'data-testid="count-calling">2<' in html
    assert "<svg" in html and "#1" in html
    answer_placed_calls()
    services.campaigns_tick(now=now + timedelta(seconds=10))
    with django_assert_max_num_queries(len(first.captured_queries)):
        client.get(f"/campaigns/{campaign.pk}/", HTTP_HX_REQUEST="true")

    rows = list(csv.reader(io.StringIO(b"".join(client.get(f"/campaigns/{campaign.pk}/export.csv")
                                                .streaming_content).decode())))
    assert rows[0][:8] == ["phone", "name", "state", "attempts", "attempt", "started_at", "ended_at", "outcome"]
    assert sum(1 for r in rows[1:] if r[7] == "answered") == 4

    client.post(f"/campaigns/{campaign.pk}/pause/")
    assert Campaign.objects.get(pk=campaign.pk).status in ("paused", "completed")


def test_another_workspaces_campaign_is_not_found(setup):
    _, campaign, _ = setup
    o2, _ = campaign_setup(numbers=[])
    assert _client(o2.workspace).get(f"/campaigns/{campaign.pk}/").status_code == 404


def test_a_started_campaign_sends_campaign_events(setup):
    from webhooks.models import WebhookEvent
    from webhooks.services import endpoint_create

    o, campaign, client = setup
    endpoint_create(environment=campaign.environment, url="https://hooks.example.test/in",
                    events=["campaign.started", "campaign.contact_finished", "campaign.completed"])
    client.post(f"/campaigns/{campaign.pk}/start/")
    now = datetime.now(dt_timezone.utc)
    for i in range(6):
        services.campaigns_tick(now=now + timedelta(seconds=i))
        answer_placed_calls()
    services.campaigns_tick(now=now + timedelta(seconds=10))
    types = list(WebhookEvent.objects.order_by("pk").values_list("type", flat=True))
    assert types[0] == "campaign.started" and types.count("campaign.contact_finished") == 4
    assert types[-1] == "campaign.completed"
    assert CampaignContact.objects.filter(state="answered").count() == 4


def test_an_upload_that_is_not_utf8_or_too_big_is_refused_and_nothing_is_written(setup):
    o, _, client = setup
    contact_list = ContactList.objects.create(workspace=o.workspace, name="Fair")
    url = f"/campaigns/lists/{contact_list.pk}/"
    latin = client.post(url, {"file": SimpleUploadedFile("x.csv", "phone,name\n2125550110,Jos\xe9\n".encode("latin-1"))})
    assert "not UTF-8" in latin.content.decode()
    big = client.post(url, {"file": SimpleUploadedFile("x.csv", b"phone\n" + b"2125550110\n" * 220_000)})
    assert "larger than 2 MB" in big.content.decode()
    assert not Contact.objects.filter(contact_list=contact_list).exists()
