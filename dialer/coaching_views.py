"""Coaching's pages and JSON endpoints (thin: request → dialer/coaching.py → JSON or page)."""
from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from dialer import coaching
from dialer.models import CallCoaching
from workspaces.decorators import api_member_required, workspace_admin_required


@never_cache
@require_GET
@workspace_admin_required
def live_calls(request):
    """Supervisors: the reps' live calls, each with Listen / Whisper / Barge (static/dialer/coaching.js)."""
    return render(request, "dialer/live_calls.html", {
        "calls": coaching.live_calls(workspace=request.workspace), "modes": CallCoaching.Mode.choices})


def _refused(exc: coaching.CoachingRefused) -> JsonResponse:
    return JsonResponse({"message": exc.message}, status=400)


@require_POST
@workspace_admin_required
def coaching_start(request, pk):
    try:
        row = coaching.coaching_start(workspace=request.workspace, supervisor=request.user, call_id=pk,
                                      mode=request.POST.get("mode", ""))
    except coaching.CoachingRefused as exc:
        return _refused(exc)
    return JsonResponse({"id": row.pk, "mode": row.mode})


@require_POST
@workspace_admin_required
def coaching_mode(request, pk):
    try:
        row = coaching.coaching_mode_set(workspace=request.workspace, supervisor=request.user, coaching_id=pk,
                                         mode=request.POST.get("mode", ""))
    except coaching.CoachingRefused as exc:
        return _refused(exc)
    return JsonResponse({"id": row.pk, "mode": row.mode})


@never_cache
@require_GET
@api_member_required
def coaching_mine(request):
    """The rep's dialer asks, during a call: who is listening or whispering now."""
    return JsonResponse({"coaching": coaching.coaching_for_rep(workspace=request.workspace, user=request.user)})
