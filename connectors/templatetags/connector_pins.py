"""`{% agent_connectors agent as connectors %}`: the agent's phone connectors (one query), for the Versions page's
"Pin" buttons, scoped to request.workspace."""
from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def agent_connectors(context, agent):
    from connectors.models import PhoneConnector

    workspace = getattr(context.get("request"), "workspace", None)
    if workspace is None or agent.workspace_id != workspace.pk:
        return []
    return list(PhoneConnector.objects.filter(workspace=workspace, agent=agent).order_by("name", "id")
                .only("id", "name", "version_mode", "pinned_version_id", "enabled", "agent_id"))
