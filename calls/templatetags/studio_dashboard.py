"""`{% studio_home %}`: Home's Studio cards (agent calls today, live calls, agents and their connectors),
scoped to request.workspace."""
from django import template
from django.db.models import Prefetch
from django.utils import timezone

register = template.Library()


@register.inclusion_tag("calls/_home_studio.html", takes_context=True)
def studio_home(context):
    from agents.models import Agent
    from calls.models import CallSession
    from calls.selectors import connector_model, live_calls

    workspace = getattr(context.get("request"), "workspace", None)
    if workspace is None:
        return {"show": False}
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    agents = list(Agent.objects.filter(workspace=workspace).order_by("name").prefetch_related(
        Prefetch("phone_connectors", queryset=connector_model().objects.order_by("name", "id").only(
            "id", "name", "enabled", "agent_id", "version_mode"))))
    return {
        "show": True,
        "calls_today": CallSession.objects.filter(workspace=workspace, started_at__gte=start).count(),
        "live": list(live_calls(workspace=workspace)[:10]),
        "agents": agents,
    }
