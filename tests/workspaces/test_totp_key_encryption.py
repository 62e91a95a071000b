"""Issue 22.8: the authenticator app's key is encrypted at rest (FIELD_ENCRYPTION_KEY), existing django-otp
devices are moved over by the migration with their key unchanged, and signing in with a code still works."""
import importlib

import pytest
from django.apps import apps
from django.db import connection
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import UserFactory
from workspaces.models import AuthenticatorDevice

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests"


def _stored_key(device) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key FROM {AuthenticatorDevice._meta.db_table} WHERE id = %s", [device.pk])
        return cursor.fetchone()[0]


def _code(device) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def test_the_key_is_stored_encrypted_and_read_back_in_clear():
    device = AuthenticatorDevice.objects.create(user=UserFactory(), name="app", confirmed=True)
    stored = _stored_key(device)
    assert device.key not in stored and device.key.upper() not in stored
    assert AuthenticatorDevice.objects.get(pk=device.pk).key == device.key
    assert len(device.bin_key) == 20


def test_enrolment_makes_an_encrypted_device_and_the_code_step_accepts_its_code(client, workspace, member_user):
    client.post("/login/", {"username": "bob", "password": PASSWORD})
    client.get(reverse("two_factor_setup"))
    device = AuthenticatorDevice.objects.get(user=member_user, confirmed=False)
    assert device.key not in _stored_key(device)
    response = client.post(reverse("two_factor_setup"), {"device_id": device.pk, "token": _code(device)})
    assert response.status_code == 200
    client.post(reverse("logout"))
    client.post("/login/", {"username": "bob", "password": PASSWORD})
    assert client.get("/").url.startswith(reverse("two_factor_verify"))
    device.refresh_from_db()
    device.last_t = -1  # the enrolment used this time step's code
    device.save()
    response = client.post(reverse("two_factor_verify"), {"token": _code(device), "next": "/"})
    assert response.status_code == 302 and response.url == "/"
    assert client.get("/").status_code == 200


def test_the_migration_moves_clear_keys_into_encrypted_devices():
    migration = importlib.import_module("workspaces.migrations.0005_authenticator_device_encrypted_key")
    user = UserFactory()
    old = TOTPDevice.objects.create(user=user, name="phone", confirmed=True, digits=8, drift=1)
    migration.encrypt_existing_keys(apps, None)
    assert not TOTPDevice.objects.exists()
    new = AuthenticatorDevice.objects.get(user=user)
    assert (new.key, new.name, new.confirmed, new.digits, new.drift) == (old.key, "phone", True, 8, 1)
    assert old.key not in _stored_key(new)
