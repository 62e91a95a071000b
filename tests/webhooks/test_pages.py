"""Studio's event-webhook pages: admins only, one workspace's endpoints never visible to or triggered by another,
the signing secret shown once (and never in a log), the delivery log, "Send test event" and "Redeliver"."""
import logging
from datetime import timedelta

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook

from agents.models import Environment
from tests.agents.factories import EnvironmentFactory
from webhooks import services, tasks
from webhooks.models import EventType, WebhookEndpoint, WebhookEvent

pytestmark = pytest.mark.django_db

KIND = "production"


def url(name, *args):
    return reverse(f"webhooks:{name}", args=[KIND, *args])


def add(client, target, events=("call.started", "call.ended")):
    return client.post(url("list"), {"endpoint-url": target, "endpoint-events": list(events),
                                     "endpoint-description": "CRM"})


def test_an_admin_adds_an_endpoint_and_sees_its_secret_once(admin_client, environment, receiver, caplog,
                                                            django_capture_on_commit_callbacks):
    rx = receiver()
    caplog.set_level(logging.DEBUG)
    response = add(admin_client, rx.url)
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    endpoint = WebhookEndpoint.objects.get()
    secret = WebhookEndpoint.objects.get().secret
    assert secret.startswith("whsec_") and response.content.decode().count(secret) == 1
    assert endpoint.events == ["call.started", "call.ended"] and endpoint.environment == environment
    # Never again: not on the list, the endpoint's page, the environment's page.
    for page in (url("list"), url("detail", endpoint.pk), reverse("agents:environment", args=[KIND])):
        body = admin_client.get(page).content.decode()
        assert rx.url in body and secret not in body and secret.removeprefix("whsec_") not in body
    # Delivered and verified with that secret; nothing in the logs.
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url("test", endpoint.pk))
    [got] = rx.requests
    assert Webhook(secret).verify(got.body, got.headers)["type"] == "webhook.test"
    assert caplog.records and secret.removeprefix("whsec_") not in caplog.text
    assert not [r for r in caplog.records if secret.removeprefix("whsec_") in str(vars(r))]  # extras too


def test_a_password_in_the_url_is_never_shown(admin_client, environment):
    response = add(admin_client, "https://hooks:pa55word-xyz@crm.example.test:8443/in?x=1")
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.display_url == "https://hooks:••••@crm.example.test:8443/in?x=1"
    for body in (response.content.decode(), admin_client.get(url("list")).content.decode(),
                 admin_client.get(url("detail", endpoint.pk)).content.decode(),
                 admin_client.get(reverse("agents:environment", args=[KIND])).content.decode()):
        assert "crm.example.test:8443/in" in body and "pa55word-xyz" not in body


def test_a_bad_or_private_url_is_refused_in_plain_words(admin_client, environment):
    with override_settings(OUTBOUND_ALLOW_PRIVATE_TARGETS=False):
        response = add(admin_client, "http://10.1.2.3/hook")
    assert response.status_code == 400 and "it is a private address" in response.content.decode()
    response = admin_client.post(url("list"), {"endpoint-url": "https://example.test/h"})
    assert response.status_code == 400 and "This field is required" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_members_cannot_see_or_change_webhooks(member_client, hook):
    rx, endpoint, secret = hook
    for page in (url("list"), url("detail", endpoint.pk)):
        assert member_client.get(page).status_code == 403
    assert member_client.post(url("delete", endpoint.pk)).status_code == 403
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


def test_an_endpoint_in_another_workspace_is_never_visible_or_triggered(hook, other_client, other_workspace,
                                                                       admin_client):
    rx, endpoint, secret = hook
    [event] = services.event_record(workspace=endpoint.workspace, environment=endpoint.environment,
                                    type=EventType.CALL_ENDED, data={})
    assert rx.url not in other_client.get(url("list")).content.decode()
    assert other_client.get(url("detail", endpoint.pk)).status_code == 404
    for action in ("test", "enable", "disable", "delete"):
        assert other_client.post(url(action, endpoint.pk)).status_code == 404
    assert other_client.post(url("redeliver", endpoint.pk, event.pk)).status_code == 404
    # The other workspace's events never reach this endpoint, even naming this environment.
    other_env = EnvironmentFactory(workspace=other_workspace, kind=Environment.Kind.PRODUCTION)
    assert services.event_record(workspace=other_workspace, environment=other_env, type="call.ended", data={}) == []
    assert services.event_record(workspace=other_workspace, environment=endpoint.environment,
                                 type="call.ended", data={}) == []
    endpoint.refresh_from_db()
    assert endpoint.enabled and rx.requests == [] and WebhookEvent.objects.count() == 1
    # An event id of this endpoint under the other workspace's own endpoint is not found either.
    theirs, _ = services.endpoint_create(environment=other_env, url="https://example.test/theirs",
                                         events=["call.ended"])
    assert other_client.post(reverse("webhooks:redeliver", args=[KIND, theirs.pk, event.pk])).status_code == 404
    assert admin_client.get(url("detail", theirs.pk)).status_code == 404


def test_the_delivery_log_shows_event_time_attempts_code_and_the_answer(admin_client, hook,
                                                                      django_capture_on_commit_callbacks):
    rx, endpoint, secret = hook
    rx.answer(500, b"<h1>Internal error</h1>" + b"x" * 600)
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url("test", endpoint.pk))
    event = WebhookEvent.objects.get()
    body = admin_client.get(url("detail", endpoint.pk)).content.decode()
    assert "webhook.test" in body and event.msg_id in body and "<code>500</code>" in body
    assert "&lt;h1&gt;Internal error&lt;/h1&gt;" in body and "x" * 477 in body and "x" * 478 not in body
    assert "The endpoint answered 500." in body
    # Redeliver: same webhook-id, now answered 200.
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url("redeliver", endpoint.pk, event.pk), follow=True)
    assert "queued for redelivery" in response.content.decode()
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.DELIVERED and event.attempts == 2
    assert [r.headers["webhook-id"] for r in rx.requests] == [event.msg_id] * 2
    body = admin_client.get(url("detail", endpoint.pk)).content.decode()
    assert "2 attempts" in body and "Delivered" in body


def test_a_disabled_endpoint_shows_its_alert_and_can_be_enabled_again(admin_client, hook, environment):
    rx, endpoint, secret = hook
    rx.answer(503, b"down")
    [event] = services.event_record(workspace=environment.workspace, environment=environment,
                                    type=EventType.CALL_ENDED, data={})
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - timedelta(hours=25))
    tasks.webhook_deliver(event.pk)
    for page in (url("list"), url("detail", endpoint.pk), reverse("agents:environment", args=[KIND])):
        body = admin_client.get(page).content.decode()
        assert 'data-testid="endpoint-alert"' in body and "every delivery failed for 24 hours" in body
    assert admin_client.post(url("test", endpoint.pk), follow=True).content.decode().count("Enable the endpoint first")
    admin_client.post(url("enable", endpoint.pk))
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.disabled_reason == "" and endpoint.failing_since is None
    assert 'data-testid="endpoint-alert"' not in admin_client.get(url("list")).content.decode()


def test_disable_and_delete(admin_client, hook):
    rx, endpoint, secret = hook
    admin_client.post(url("disable", endpoint.pk))
    endpoint.refresh_from_db()
    assert not endpoint.enabled and endpoint.disabled_reason == "Disabled by alice."
    assert admin_client.post(url("delete", endpoint.pk)).status_code == 302
    assert not WebhookEndpoint.objects.exists()
    assert admin_client.get(url("detail", endpoint.pk)).status_code == 404


def test_the_pages_stay_a_few_queries(admin_client, hook, environment, django_assert_max_num_queries):
    rx, endpoint, secret = hook
    for _ in range(5):
        services.event_record(workspace=environment.workspace, environment=environment, type="call.ended", data={})
    for event in WebhookEvent.objects.all():
        tasks.webhook_deliver(event.pk)
    admin_client.get(url("detail", endpoint.pk))
    with django_assert_max_num_queries(12):
        assert admin_client.get(url("detail", endpoint.pk)).status_code == 200
    with django_assert_max_num_queries(12):
        assert admin_client.get(url("list")).status_code == 200
