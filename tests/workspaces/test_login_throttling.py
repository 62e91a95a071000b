"""Login throttling (django-axes): N failures lock the username (not the address it came from), an address only
after failures for many different usernames; on /login/ and /admin/login/, with a page naming what is locked; the
state is in the database; deleting the attempt in admin unlocks."""
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


def test_the_account_guessed_at_is_locked_not_the_office_it_is_guessed_from():
    """Issue 22 point 7: after 5 wrong passwords for rep1, the admin at the same address signs in."""
    UserFactory(username="rep1")
    UserFactory(username="admin")
    office = "203.0.113.7"
    fail(Client(REMOTE_ADDR=office), "/login/", "rep1", settings.AXES_FAILURE_LIMIT)
    response = Client(REMOTE_ADDR=office).post("/login/", {"username": "admin", "password": PASSWORD})
    assert response.status_code == 302
    # rep1 is locked from every address, and the page says so by name.
    response = Client(REMOTE_ADDR="198.51.100.9").post("/login/", {"username": "rep1", "password": PASSWORD})
    assert response.status_code == 429
    text = response.content.decode()
    assert "The account <strong>rep1</strong> is locked" in text and "<strong>admin</strong>" not in text


def test_a_correct_password_never_counts_as_a_failure():
    UserFactory(username="rep1")
    client = Client(REMOTE_ADDR="203.0.113.7")
    fail(client, "/login/", "rep1", settings.AXES_FAILURE_LIMIT)
    before = AccessAttempt.objects.get(username="rep1").failures_since_start
    for _ in range(3):
        assert client.post("/login/", {"username": "rep1", "password": PASSWORD}).status_code == 429
    assert AccessAttempt.objects.get(username="rep1").failures_since_start == before
    # Below the limit, a correct password signs in and clears the count.
    UserFactory(username="rep2")
    fail(client, "/login/", "rep2", settings.AXES_FAILURE_LIMIT - 1)
    assert client.post("/login/", {"username": "rep2", "password": PASSWORD}).status_code == 302
    assert not AccessAttempt.objects.filter(username="rep2").exists()


def test_an_address_is_locked_only_after_failures_for_many_different_usernames(settings):
    settings.AXES_ADDRESS_USERNAME_LIMIT = 8
    assert settings.AXES_ADDRESS_USERNAME_LIMIT > settings.AXES_FAILURE_LIMIT
    UserFactory(username="admin")
    sprayer = Client(REMOTE_ADDR="203.0.113.9")
    for i in range(settings.AXES_ADDRESS_USERNAME_LIMIT - 1):
        sprayer.post("/login/", {"username": f"guess{i}", "password": "wrong"})
    # Failures for 7 different usernames: the address still signs in.
    assert Client(REMOTE_ADDR="203.0.113.9").post("/login/", {"username": "admin", "password": PASSWORD}).status_code == 302
    sprayer.post("/login/", {"username": "guess-last", "password": "wrong"})
    response = Client(REMOTE_ADDR="203.0.113.9").post("/login/", {"username": "admin", "password": PASSWORD})
    assert response.status_code == 429
    assert "Sign-ins from this network address (203.0.113.9) are paused" in response.content.decode()
    # Another address is not affected.
    assert Client(REMOTE_ADDR="198.51.100.9").post("/login/", {"username": "admin", "password": PASSWORD}).status_code == 302


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
