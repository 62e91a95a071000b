"""A wrong FIELD_ENCRYPTION_KEY fails loudly: a system check error, and an exception on read (never ciphertext)."""
import pytest
from cryptography.fernet import Fernet, MultiFernet
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from encrypted_model_fields import fields as emf

from telephony.models import TwilioConnection
from tests.factories import TwilioConnectionFactory
from workspaces.checks import check_encrypted_values_decrypt
from workspaces.fields import UndecryptableSecret, mask_secret

pytestmark = pytest.mark.django_db

TOKEN = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def stored(workspace):
    return TwilioConnectionFactory(workspace=workspace, auth_token=TOKEN)


def raw_column(pk) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT auth_token FROM {TwilioConnection._meta.db_table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_value_is_encrypted_at_rest_and_read_back(stored):
    raw = raw_column(stored.pk)
    assert TOKEN not in raw and raw.startswith("gAAAAA")
    assert TwilioConnection.objects.get(pk=stored.pk).auth_token == TOKEN
    assert check_encrypted_values_decrypt(databases=["default"]) == []


def test_wrong_key_raises_on_read_and_fails_the_system_check(stored, monkeypatch):
    monkeypatch.setattr(emf, "CRYPTER", MultiFernet([Fernet(Fernet.generate_key())]))

    with pytest.raises(UndecryptableSecret, match="FIELD_ENCRYPTION_KEY"):
        TwilioConnection.objects.get(pk=stored.pk)

    errors = check_encrypted_values_decrypt(databases=["default"])
    assert {e.id for e in errors} == {"workspaces.E001"}
    assert any("telephony.TwilioConnection.auth_token: 1 stored value(s)" in e.msg for e in errors), errors
    with pytest.raises(SystemCheckError, match="workspaces.E001"):
        call_command("check", "--database", "default")


def test_key_rotation_new_key_first_old_key_still_reads(stored, monkeypatch, settings):
    old_key = settings.FIELD_ENCRYPTION_KEY
    monkeypatch.setattr(emf, "CRYPTER", MultiFernet([Fernet(Fernet.generate_key()), Fernet(old_key)]))
    assert TwilioConnection.objects.get(pk=stored.pk).auth_token == TOKEN
    assert check_encrypted_values_decrypt(databases=["default"]) == []


def test_check_without_database_flag_does_not_touch_the_database(stored, monkeypatch):
    monkeypatch.setattr(emf, "CRYPTER", MultiFernet([Fernet(Fernet.generate_key())]))
    assert check_encrypted_values_decrypt(databases=None) == []


def test_empty_secrets_are_fine_and_masking_shows_only_last_four(workspace):
    TwilioConnectionFactory(workspace=workspace, auth_token="", api_key_secret="")
    assert check_encrypted_values_decrypt(databases=["default"]) == []
    assert mask_secret(TOKEN) == "••••cdef"
    assert mask_secret("") == ""
