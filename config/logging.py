"""Structured (JSON) log lines with secrets redacted.

Redaction happens twice (the filter on the handler, and again in the formatter,
so a handler configured without the filter still never prints a secret):

- `extra` fields whose name says secret (token, secret, password, authorization,
  cookie, signature, ...) lose their string value; booleans and numbers under such
  names (`has_signature=True`) and SID fields (`api_key_sid`) are kept.
- In every string (message, extras, exception text):
  `auth_token=...`, `"secret": "..."`, `password: ...`, `Authorization: Basic ...`,
  `Bearer ...`, credentials in URLs (`https://AC..:token@host`), JWTs (Twilio access
  tokens), Fernet ciphertexts (our encrypted columns), 32-hex Twilio auth tokens and
  32-character API key secrets.

Not redacted, because ops need them: Twilio SIDs (`AC`/`PN`/`SK`/`CA`... + 32 hex,
34 characters: the `\\b` word boundaries keep the 32-character patterns from
matching inside them), phone numbers, URLs without credentials, error codes.
"""
import json
import logging
import re

REDACTED = "[redacted]"

# Names of `extra` fields (and of dict keys inside them) whose string values are secrets.
SECRET_KEYS = re.compile(r"(token|secret|password|passwd|authorization|signature|api_?key|cookie|credential)", re.I)
# ...except identifiers that merely mention them: api_key_sid, token_ttl, has_signature (non-strings are kept anyway).
NOT_SECRET_KEYS = re.compile(r"(_sid|sid|_ttl|_url|_count|_at|_id)$", re.I)

_KEY_VALUE = re.compile(
    r"(?i)\b((?:x[_-]twilio[_-])?(?:auth[_ ]?token|authtoken|api[_ ]?key[_ ]?secret|secret|password|passwd|"
    r"access[_ ]?token|refresh[_ ]?token|token|signature))"
    r"((?:\\?[\"'])?\s*[=:]\s*(?:\\?[\"'])?)"
    r"([^\s\"'\\,;&}\]]+)"
)
# "Basic QUM...=" / "Bearer eyJ...": the credential has a digit, a capital or base64 punctuation (prose words don't).
_AUTH_SCHEME = re.compile(
    r"(?i)\b(authorization\s*[=:]\s*[\"']?\s*)?\b(basic|bearer)\s+"
    r"(?-i:(?=[A-Za-z0-9+/=._~-]*[0-9A-Z+/=])[A-Za-z0-9+/=._~-]{8,})"
)
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+:)([^@\s/]+)(@)")
_PATTERNS = [
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),  # JWTs (Twilio access tokens)
    re.compile(r"\bgAAAAA[A-Za-z0-9_=-]{20,}"),  # Fernet ciphertext (encrypted columns)
    re.compile(r"\b[0-9a-f]{32}\b"),  # Twilio auth tokens (not SIDs: those are 2 letters + 32 hex, one word)
    # Twilio API key secrets: 32 letters and digits with at least one of each.
    re.compile(r"\b(?=[A-Za-z0-9]{0,31}[0-9])(?=[A-Za-z0-9]{0,31}[A-Za-z])[A-Za-z0-9]{32}\b"),
]


def redact_text(text: str) -> str:
    if not text:
        return text
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}{REDACTED}{m.group(3)}", text)
    text = _AUTH_SCHEME.sub(lambda m: f"{m.group(1) or ''}{m.group(2)} {REDACTED}", text)
    text = _KEY_VALUE.sub(
        lambda m: m.group(0) if m.group(3) == REDACTED or m.group(3).startswith("[redacted")
        else f"{m.group(1)}{m.group(2)}{REDACTED}",
        text,
    )
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def is_secret_key(key: str) -> bool:
    return bool(SECRET_KEYS.search(key)) and not NOT_SECRET_KEYS.search(key)


def redact_value(key: str, value):
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {k: redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [redact_value(key, v) for v in value]
    if is_secret_key(key):
        return REDACTED
    return redact_text(value if isinstance(value, str) else str(value))


_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def extra_fields(record: logging.LogRecord) -> dict:
    return {key: getattr(record, key) for key in vars(record) if key not in _STANDARD_ATTRS and not key.startswith("_")}


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not kill logging
            message = f"{record.msg} {record.args}"
        record.msg = redact_text(str(message))
        record.args = ()
        for key, value in extra_fields(record).items():
            setattr(record, key, redact_value(key, value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the `extra` fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001
            message = f"{record.msg} {record.args}"
        payload = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact_text(str(message)),
        }
        for key, value in extra_fields(record).items():
            payload[key] = redact_value(key, value)
        if record.exc_info:
            payload["exc"] = redact_text(self.formatException(record.exc_info))
        elif record.exc_text:
            payload["exc"] = redact_text(record.exc_text)
        if record.stack_info:
            payload["stack"] = redact_text(self.formatStack(record.stack_info))
        return json.dumps(payload, default=str)
