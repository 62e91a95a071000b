"""Structured (JSON) log lines with secrets redacted.

Redaction is by key name (token, secret, password, authorization, signature)
in `extra` fields and by pattern in the message (Twilio auth tokens / API key
secrets are 32 hex chars; Fernet ciphertexts; bearer tokens; JWTs).
"""
import json
import logging
import re

SECRET_KEYS = re.compile(r"(token|secret|password|passwd|authorization|signature|api_key|apikey|cookie)", re.I)
SECRET_PATTERNS = [
    re.compile(r"(?i)(auth[_ ]?token|secret|password|authorization|bearer)([\"'=:\s]+)([^\s\"',}]+)"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b"),  # JWTs
    re.compile(r"\bgAAAAA[A-Za-z0-9_=-]{20,}"),  # Fernet ciphertext
    re.compile(r"\b[0-9a-f]{32}\b"),  # Twilio auth tokens / key secrets
]
REDACTED = "[redacted]"

_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def redact_text(text: str) -> str:
    text = SECRET_PATTERNS[0].sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    for pattern in SECRET_PATTERNS[1:]:
        text = pattern.sub(REDACTED, text)
    return text


def redact_value(key: str, value):
    if SECRET_KEYS.search(key):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact_value(str(k), v) for k, v in value.items()}
    return value


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not kill logging
            message = str(record.msg)
        record.msg = redact_text(message)
        record.args = ()
        for key in set(vars(record)) - _STANDARD_ATTRS:
            setattr(record, key, redact_value(key, getattr(record, key)))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in set(vars(record)) - _STANDARD_ATTRS:
            value = getattr(record, key)
            payload[key] = value if isinstance(value, (str, int, float, bool, type(None), list, dict)) else str(value)
        if record.exc_info:
            payload["exc"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(payload, default=str)
