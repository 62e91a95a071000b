"""The local spool of calls that came while PostgreSQL was down (issue 22.10).

`never_500` (telephony.webhook_security) appends one JSON line per such webhook to a file in OUTAGE_SPOOL_DIR
(a local folder of each web server: no database, no Redis needed), at most OUTAGE_SPOOL_MAX_BYTES. The first
webhook that passes its checks again (`twilio_webhook`: the database answered its lookup) drains the file into
`telephony.MissedCall` rows (`services.missed_calls_record`); checking for the file is one stat call.
"""
from __future__ import annotations

import json
import logging
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

SPOOL_NAME = "missed-calls.jsonl"
FIELDS = {"CallSid": "call_sid", "AccountSid": "account_sid", "From": "from_number", "To": "to_number"}


def spool_dir() -> Path:
    return Path(getattr(settings, "OUTAGE_SPOOL_DIR", "") or (Path(settings.BASE_DIR) / "var" / "outage-spool"))


def spool_path() -> Path:
    return spool_dir() / SPOOL_NAME


def _request_fields(request) -> dict:
    values = {}
    try:
        params = request.GET.dict()
        if request.method == "POST":
            params.update(request.POST.dict())
    except Exception:  # an unreadable body: keep what the URL says
        params = request.GET.dict()
    for name, key in FIELDS.items():
        values[key] = str(params.get(name, ""))[:64]
    return values


def spool_append(request) -> bool:
    """Note this webhook in the spool (no database, no cache). False when the spool is full or unwritable."""
    path = spool_path()
    entry = {"received_at": datetime.now(timezone.utc).isoformat(), "path": request.path[:255],
             **_request_fields(request)}
    line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size + len(line) > int(getattr(settings, "OUTAGE_SPOOL_MAX_BYTES",
                                                                              10_000_000)):
            logger.error("outage spool full: a call during the database outage was not noted",
                         extra={"path": request.path})
            return False
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)  # one write with O_APPEND: whole lines from concurrent requests
        finally:
            os.close(fd)
    except OSError:
        logger.exception("could not note a call in the outage spool", extra={"path": request.path})
        return False
    logger.warning("database down: call noted in the outage spool", extra={"path": request.path,
                                                                            "call_sid": entry["call_sid"]})
    return True


def spool_pending() -> bool:
    directory = spool_dir()
    return (directory / SPOOL_NAME).exists() or any(directory.glob(SPOOL_NAME + ".*.draining"))


def spool_drain() -> int:
    """Move the spool aside (one drainer wins the rename) and record its entries; returns how many were recorded.
    A batch whose recording fails stays on disk (as `.draining`) and is taken again by the next drain."""
    from telephony.services import missed_calls_record

    directory = spool_dir()
    current = directory / SPOOL_NAME
    if current.exists():
        try:
            current.rename(directory / f"{SPOOL_NAME}.{uuid.uuid4().hex}.draining")
        except FileNotFoundError:
            pass  # another process took it
    recorded = 0
    for batch in sorted(directory.glob(SPOOL_NAME + ".*.draining")):
        claimed = batch.with_suffix(".claimed")
        try:
            batch.rename(claimed)
        except FileNotFoundError:
            continue
        entries = []
        for raw in claimed.read_text(errors="replace").splitlines():
            try:
                entries.append(json.loads(raw))
            except ValueError:
                continue
        try:
            recorded += missed_calls_record(entries=entries)
        except Exception:
            claimed.rename(batch)  # the database went away again: try later
            raise
        claimed.unlink()
    return recorded
