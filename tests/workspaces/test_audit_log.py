"""The audit log: one row per business event, written by the service that did it, with the actor and IP;
visible to workspace admins (Settings → Audit log) and read-only in Django admin; never a secret value."""
import json

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from agents import services as agent_services
from agents.models import Environment, EnvironmentSecret
from calls.models import CallSession
from calls.services.recordings import call_listen_record, intervention_record
from connectors import services as connector_services
from connectors.models import ConnectorNumber
from telephony import services as telephony_services
from tests.agents.factories import AgentFactory, EnvironmentFactory, PhoneConnectorFactory, draft_of, published_agent
from tests.dialer.settings_helpers import connect_byok
from tests.factories import PhoneNumberFactory, TwilioConnectionFactory
from workspaces.models import AuditEntry

pytestmark = pytest.mark.django_db

A = AuditEntry.Action
SECRET_VALUE = "sk-live-VerySecretValue-9f8e7d6c5b4a"
AUTH_SECRET = "auth-connector-Secret-0a1b2c3d4e5f"


def all_rows_text() -> str:
    return json.dumps(list(AuditEntry.objects.values()), default=str)


def only(action) -> AuditEntry:
    rows = list(AuditEntry.objects.filter(action=action))
    assert len(rows) == 1, (action, rows)
    return rows[0]


@pytest.fixture
def admin_web(admin_user):
    client = Client(REMOTE_ADDR="203.0.113.50")
    client.force_login(admin_user)
    return client


def test_byok_credentials_are_audited_without_the_token(workspace, admin_user, admin_web, twilio_sandbox):
    sid, token = twilio_sandbox.add_account(friendly_name="Customer")
    response = admin_web.post(reverse("dialer:connect_byok"), {"account_sid": sid, "auth_token": token})
    assert response.status_code == 302
    entry = only(A.TWILIO_CREDENTIALS_SAVED)
    assert (entry.workspace, entry.actor, entry.actor_label) == (workspace, admin_user, "alice")
    assert entry.ip_address == "203.0.113.50"
    assert entry.details["account_sid"] == sid and entry.details["entered_new"] is True
    assert token not in all_rows_text()


@override_settings(TWILIO_PARENT_ACCOUNT_SID="AC" + "0" * 32, TWILIO_PARENT_AUTH_TOKEN="parent-token-SECRET-123")
def test_switching_to_hosted_is_audited(workspace, admin_user):
    telephony_services.connection_start_hosted(workspace=workspace, actor=admin_user)
    assert only(A.TWILIO_HOSTED_STARTED).actor == admin_user
    assert "parent-token-SECRET-123" not in all_rows_text()


def test_buying_and_releasing_a_number_are_audited(workspace, admin_user, twilio_sandbox,
                                                   django_capture_on_commit_callbacks):
    connection, sid, token = connect_byok(workspace, twilio_sandbox, django_capture_on_commit_callbacks)
    found = telephony_services.available_numbers_search(workspace=workspace, country="US", area_code="512")
    purchase = telephony_services.number_purchase_start(workspace=workspace, phone_number=found[0].phone_number)
    number = telephony_services.number_provision(purchase_id=purchase.pk, actor=admin_user)
    bought = only(A.NUMBER_BOUGHT)
    assert (bought.actor, bought.object_label, bought.details["phone_number"]) == (
        admin_user, number.phone_number, number.phone_number)
    telephony_services.number_release(workspace=workspace, number_id=number.pk, actor=admin_user)
    released = only(A.NUMBER_RELEASED)
    assert released.object_id == str(number.pk) and released.details["phone_number"] == number.phone_number
    assert token not in all_rows_text()


def test_publishing_a_version_is_audited(workspace, admin_user, admin_web):
    agent = AgentFactory(workspace=workspace, name="Ava")
    assert admin_web.post(reverse("agents:publish", args=[agent.pk])).status_code == 302
    entry = only(A.AGENT_PUBLISHED)
    assert entry.actor == admin_user and entry.details == {"agent": "Ava", "version": 1}
    assert entry.object_type == "agents.AgentVersion"


def test_pinning_a_connector_to_a_version_is_audited(workspace, admin_user):
    agent = published_agent(workspace, versions=2)
    v1 = agent.versions.get(number=1)
    env = EnvironmentFactory(workspace=workspace, kind=Environment.Kind.PRODUCTION)
    connector = connector_services.connector_create(workspace=workspace, agent=agent, environment=env,
                                                    version_mode="pinned", pinned_version=v1, actor=admin_user)
    assert only(A.CONNECTOR_VERSION_PINNED).details["version"] == 1
    v2 = agent.versions.get(number=2)
    connector_services.connector_update(connector=connector, agent=agent, environment=env, version_mode="pinned",
                                        pinned_version=v2, actor=admin_user)
    assert AuditEntry.objects.filter(action=A.CONNECTOR_VERSION_PINNED).count() == 2
    connector_services.connector_update(connector=connector, agent=agent, environment=env, version_mode="pinned",
                                        pinned_version=v2, actor=admin_user)  # no change: no row
    assert AuditEntry.objects.filter(action=A.CONNECTOR_VERSION_PINNED).count() == 2


def test_attaching_and_detaching_numbers_are_audited(workspace, admin_user, admin_web, twilio_sandbox):
    sid, token = twilio_sandbox.add_account()
    TwilioConnectionFactory(workspace=workspace, account_sid=sid, auth_token=token)
    number_sid = twilio_sandbox.add_incoming_number(sid, "+15125550142")
    number = PhoneNumberFactory(workspace=workspace, sid=number_sid, phone_number="+15125550142")
    connector = PhoneConnectorFactory(workspace=workspace, agent=published_agent(workspace), name="Main line")
    response = admin_web.post(reverse("connectors:attach", args=[connector.pk]), {"phone_number": number.pk})
    assert response.status_code == 302
    attached = only(A.CONNECTOR_NUMBER_ATTACHED)
    assert (attached.actor, attached.object_label, attached.details) == (
        admin_user, "Main line", {"phone_number": "+15125550142"})
    link = ConnectorNumber.objects.get()
    connector_services.connector_number_detach(link=link, actor=admin_user)
    assert only(A.CONNECTOR_NUMBER_DETACHED).details == {"phone_number": "+15125550142"}
    assert token not in all_rows_text()


def test_secrets_are_audited_by_name_only(workspace, admin_user, admin_web):
    environment = EnvironmentFactory(workspace=workspace, kind=Environment.Kind.PRODUCTION)
    url = reverse("agents:secret_set", args=[environment.kind])
    assert admin_web.post(url, {"secret-name": "CRM_KEY", "secret-value": SECRET_VALUE}).status_code == 302
    assert admin_web.post(url, {"secret-name": "CRM_KEY", "secret-value": SECRET_VALUE + "-rotated"}).status_code == 302
    rows = list(AuditEntry.objects.filter(action=A.SECRET_SET).order_by("pk"))
    assert [r.details for r in rows] == [{"name": "CRM_KEY", "environment": "production", "created": True},
                                          {"name": "CRM_KEY", "environment": "production", "created": False}]
    secret = EnvironmentSecret.objects.get(name="CRM_KEY")
    response = admin_web.post(reverse("agents:secret_delete", args=[environment.kind, secret.pk]))
    assert response.status_code == 302
    assert only(A.SECRET_DELETED).details == {"name": "CRM_KEY", "environment": "production"}

    agent_services.auth_connector_save(environment=environment, name="crm", kind="bearer", config={},
                                       secret=AUTH_SECRET, actor=admin_user)
    assert only(A.AUTH_CONNECTOR_SAVED).details["rotated"] is True
    text = all_rows_text()
    assert SECRET_VALUE not in text and AUTH_SECRET not in text
    masked = EnvironmentSecret(value=SECRET_VALUE).masked_value
    assert masked not in text


def _call(workspace):
    connector = PhoneConnectorFactory(workspace=workspace, agent=AgentFactory(workspace=workspace), name="Main")
    return CallSession.objects.create(call_sid="CA" + "5" * 32, workspace=workspace, connector=connector,
                                      agent_version=draft_of(connector.agent), environment=connector.environment,
                                      from_number="+15125550199", to_number="+15125550100", status="in-progress")


def test_listening_intervening_and_exporting_a_call_are_audited(workspace, admin_user, admin_web):
    call = _call(workspace)
    call_listen_record(call_session=call, actor=admin_user, ip="198.51.100.4")
    listened = only(A.CALL_LISTENED)
    assert (listened.actor, listened.object_id, listened.ip_address) == (admin_user, str(call.pk), "198.51.100.4")
    intervention_record(call_session_id=call.pk, user=admin_user, kind="takeover", detail="transfer_to_sales")
    assert only(A.CALL_INTERVENED).details["kind"] == "takeover"
    response = admin_web.get(reverse("calls:export", args=[call.pk]))
    assert response.status_code == 200
    exported = only(A.CALL_EXPORTED)
    assert exported.actor == admin_user and exported.ip_address == "203.0.113.50"


def test_changing_the_two_factor_requirement_is_audited(workspace, admin_user, admin_web):
    admin_web.post(reverse("workspace_security"), {"require_two_factor": "on"})
    assert only(A.SECURITY_CHANGED).details == {"require_two_factor": True}


def test_admins_see_their_workspace_log_paginated_members_do_not(workspace, admin_user, admin_web, member_client,
                                                                 other_workspace, other_client):
    from workspaces.services import audit_record

    for n in range(60):
        audit_record(workspace=workspace, actor=admin_user, action=A.SECRET_SET, details={"name": f"S{n}"})
    audit_record(workspace=other_workspace, actor=None, action=A.SECRET_SET, details={"name": "OTHER_WS"})
    page = admin_web.get(reverse("audit_log"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "name: S59" in html and "name: S0<" not in html and "OTHER_WS" not in html
    assert "Page 1 of 2" in html
    assert "name: S0<" in admin_web.get(reverse("audit_log") + "?page=2").content.decode()
    assert member_client.get(reverse("audit_log")).status_code == 403
    assert "S59" not in other_client.get(reverse("audit_log")).content.decode()


def test_audit_details_drop_keys_that_name_secrets(workspace, admin_user):
    from workspaces.services import audit_record

    entry = audit_record(workspace=workspace, actor=admin_user, action=A.SECRET_SET,
                         details={"name": "X", "value": "leak-1", "auth_token": "leak-2", "nested": {"password": "l3"}})
    assert entry.details == {"name": "X", "nested": {}}


def test_django_admin_shows_the_log_read_only(workspace, admin_user, admin_web):
    from workspaces.services import audit_record

    entry = audit_record(workspace=workspace, actor=admin_user, action=A.CALL_EXPORTED, details={"format": "json"})
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    assert admin_web.get(reverse("admin:workspaces_auditentry_changelist")).status_code == 200
    assert admin_web.get(reverse("admin:workspaces_auditentry_change", args=[entry.pk])).status_code == 200
    assert admin_web.get(reverse("admin:workspaces_auditentry_add")).status_code == 403
    response = admin_web.post(reverse("admin:workspaces_auditentry_delete", args=[entry.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk).exists()
