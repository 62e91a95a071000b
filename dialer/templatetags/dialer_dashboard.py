"""`{% dialer_today %}`: Home's dialer card (browser calls started today), scoped to request.workspace."""
from django import template
from django.db.models import Count, Q
from django.utils import timezone

register = template.Library()


@register.inclusion_tag("dialer/_home_dialer.html", takes_context=True)
def dialer_today(context):
    from dialer.models import Call

    workspace = getattr(context.get("request"), "workspace", None)
    if workspace is None:
        return {"show": False}
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    counts = Call.customer_calls().filter(workspace=workspace, started_at__gte=start).aggregate(
        total=Count("id"), outbound=Count("id", filter=Q(direction="outbound")))
    return {"show": True, "total": counts["total"], "outbound": counts["outbound"],
            "inbound": counts["total"] - counts["outbound"]}
