"""Login throttling (django-axes): N failures per username + IP lock that combination out, on /login/ and
/admin/login/, with a clear page; the state is in the database; deleting the attempt in admin unlocks."""
import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests"


def fail(client, url, username, times):
    for _ in range(times):
        response = client.post(url, {"username": username, "password": "wrong-guess"})
    return response


def test_login_locks_out_after_the_failure_limit_with_a_clear_message():
    UserFactory(username="ann")
    client = Client(REMOTE_ADDR="203.0.113.7")
    response = fail(client, "/login/", "ann", settings.AXES_FAILURE_LIMIT - 1)
    assert response.status_code == 200  # still the login form with its error
    response = fail(client, "/login/", "ann", 1)
    assert response.status_code == 429
    assert b"Too many failed logins" in response.content
    # Locked: even the right password is refused now.
    response = client.post("/login/", {"username": "ann", "password": PASSWORD})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert AccessAttempt.objects.filter(username="ann", ip_address="203.0.113.7").exists()


def test_lockout_is_per_user_and_per_address():
    UserFactory(username="ann")
    UserFactory(username="ben")
    fail(Client(REMOTE_ADDR="203.0.113.7"), "/login/", "ann", settings.AXES_FAILURE_LIMIT)
    # The user guessed at is locked from every address, and the guessing address for every user...
    response = Client(REMOTE_ADDR="198.51.100.9").post("/login/", {"username": "ann", "password": PASSWORD})
    assert response.status_code == 429
    response = Client(REMOTE_ADDR="203.0.113.7").post("/login/", {"username": "ben", "password": PASSWORD})
    assert response.status_code == 429
    # ...while another user from another address logs in as usual.
    response = Client(REMOTE_ADDR="198.51.100.9").post("/login/", {"username": "ben", "password": PASSWORD})
    assert response.status_code == 302


def test_one_address_guessing_many_users_is_locked_out():
    for name in ("u1", "u2", "u3", "u4", "u5", "u6"):
        UserFactory(username=name)
    client = Client(REMOTE_ADDR="203.0.113.9")
    for i in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": f"u{i + 1}", "password": "wrong"})
    response = client.post("/login/", {"username": "u6", "password": PASSWORD})
    assert response.status_code == 429


def test_admin_login_is_throttled_too():
    UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client(REMOTE_ADDR="203.0.113.8")
    response = fail(client, reverse("admin:login"), "root", settings.AXES_FAILURE_LIMIT)
    assert response.status_code == 429
    response = client.post(reverse("admin:login"), {"username": "root", "password": PASSWORD})
    assert response.status_code == 429


def test_deleting_the_attempt_in_admin_unlocks():
    UserFactory(username="ann")
    client = Client(REMOTE_ADDR="203.0.113.7")
    fail(client, "/login/", "ann", settings.AXES_FAILURE_LIMIT)
    attempt = AccessAttempt.objects.get(username="ann")
    ops = Client(REMOTE_ADDR="192.0.2.1")
    ops.force_login(UserFactory(username="ops", is_staff=True, is_superuser=True))
    url = reverse("admin:axes_accessattempt_delete", args=[attempt.pk])
    assert ops.get(url).status_code == 200
    assert ops.post(url, {"post": "yes"}).status_code == 302
    assert not AccessAttempt.objects.exists()
    response = client.post("/login/", {"username": "ann", "password": PASSWORD})
    assert response.status_code == 302


def test_a_successful_login_resets_the_failure_count():
    UserFactory(username="ann")
    client = Client(REMOTE_ADDR="203.0.113.7")
    fail(client, "/login/", "ann", settings.AXES_FAILURE_LIMIT - 1)
    assert client.post("/login/", {"username": "ann", "password": PASSWORD}).status_code == 302
    client.post(reverse("logout"))
    response = fail(client, "/login/", "ann", settings.AXES_FAILURE_LIMIT - 1)
    assert response.status_code == 200
