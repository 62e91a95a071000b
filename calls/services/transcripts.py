"""Transcript lines of many live calls, stored in one transaction (the per-process writer's flush).

`calls.engine.persistence.TranscriptWriter` collects the lines of every call a process serves and hands them here
a few times a second, in the order the calls produced them:

    ("turn", call_session_id, (role, text, heard[, started as a unix time[, latency dict]]))
    ("cut", call_session_id, (seq, heard text))     # a stored agent turn the caller interrupted

A turn gets the call's next `seq` (after the rows already stored, whoever stored them); a cut updates the turn it
names. One INSERT for all the turns of a flush, then the cuts (a cut always names a turn appended before it), in
one transaction: one commit per flush instead of one per turn.
"""
from __future__ import annotations

from datetime import datetime
from datetime import timezone as dt_timezone

from django.db import transaction
from django.db.models import Max
from django.utils import timezone


def _turn_row(call_session_id: int, seq: int, turn: tuple, now):
    from calls.models import CallTurn

    role, text, heard = turn[:3]
    started = datetime.fromtimestamp(turn[3], tz=dt_timezone.utc) if len(turn) > 3 and turn[3] else now
    latency = turn[4] if len(turn) > 4 and turn[4] else {}
    return CallTurn(call_session_id=call_session_id, seq=seq, role=role, text=text, heard=heard,
                    started_at=started, **latency)


@transaction.atomic
def transcript_lines_store(*, lines: list[tuple]) -> None:
    """Store the lines (see the module) of any number of calls, in order, in one transaction."""
    from calls.models import CallTurn

    if not lines:
        return
    ids = {call_id for kind, call_id, _ in lines if kind == "turn"}
    last = dict(CallTurn.objects.filter(call_session_id__in=ids).values("call_session_id")
                .annotate(last=Max("seq")).values_list("call_session_id", "last")) if ids else {}
    now = timezone.now()
    rows = []
    for kind, call_id, data in lines:
        if kind == "turn":
            last[call_id] = (last.get(call_id) or 0) + 1
            rows.append(_turn_row(call_id, last[call_id], data, now))
    if rows:
        CallTurn.objects.bulk_create(rows)
    for kind, call_id, data in lines:
        if kind == "cut":
            seq, text = data
            CallTurn.objects.filter(call_session_id=call_id, seq=seq, role="agent").update(text=text, heard=False)
