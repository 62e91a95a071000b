"""Encrypted model fields that fail loudly.

django-encrypted-model-fields returns the stored ciphertext unchanged when it
cannot decrypt it (wrong FIELD_ENCRYPTION_KEY), which would send ciphertext to
Twilio as an auth token. These subclasses raise `UndecryptableSecret` instead;
`workspaces.checks` turns the same condition into a system check error.
"""
import cryptography.fernet
from encrypted_model_fields import fields as emf


class UndecryptableSecret(Exception):
    """A stored secret cannot be decrypted with the configured FIELD_ENCRYPTION_KEY."""


def _decrypt(value):
    if value is None or value == "":
        return value
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    try:
        return emf.decrypt_str(value)
    except cryptography.fernet.InvalidToken as exc:
        raise UndecryptableSecret(
            "A stored secret cannot be decrypted with FIELD_ENCRYPTION_KEY; the key is wrong or was rotated without "
            "keeping the old key (FIELD_ENCRYPTION_KEY accepts a list: new key first, then old keys)."
        ) from exc


class StrictEncryptedMixin:
    def from_db_value(self, value, *args, **kwargs):
        return _decrypt(value)

    def to_python(self, value):
        # Values assigned in code are plain text already; only DB values are decrypted.
        return value


class EncryptedCharField(StrictEncryptedMixin, emf.EncryptedCharField):
    pass


class EncryptedTextField(StrictEncryptedMixin, emf.EncryptedTextField):
    pass


def can_decrypt(ciphertext: str) -> bool:
    try:
        _decrypt(ciphertext)
    except UndecryptableSecret:
        return False
    return True


def mask_secret(value: str | None) -> str:
    """'••••abcd' for display: only the last 4 characters, never the rest."""
    if not value:
        return ""
    return "••••" + value[-4:]
