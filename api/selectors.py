"""Reads of the public API: a workspace's calls (another workspace's id is simply not found) and keys."""
from __future__ import annotations

from api.models import ApiKey
from calls.models import CallSession


def api_calls(*, workspace_id: int, status: str = "", direction: str = "", agent: int | None = None,
              environment: int | None = None, to: str = "", started_after=None, started_before=None):
    qs = CallSession.objects.filter(workspace_id=workspace_id).select_related("agent_version")
    if status:
        qs = qs.filter(status=status)
    if direction:
        qs = qs.filter(direction=direction)
    if agent:
        qs = qs.filter(agent_version__agent_id=agent)
    if environment:
        qs = qs.filter(environment_id=environment)
    if to:
        qs = qs.filter(to_number=to)
    if started_after:
        qs = qs.filter(started_at__gte=started_after)
    if started_before:
        qs = qs.filter(started_at__lt=started_before)
    return qs.order_by("-started_at", "-pk")


def api_call_get(*, workspace_id: int, call_id: int) -> CallSession | None:
    return (CallSession.objects.select_related("agent_version", "analysis")
            .filter(workspace_id=workspace_id, pk=call_id).first())


def api_keys(*, workspace):
    return ApiKey.objects.filter(workspace=workspace).select_related("created_by")
