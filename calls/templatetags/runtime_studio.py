"""`{% studio_test_chat agent %}`: the Test-in-Studio chat for an agent (admins only), scoped to request.workspace."""
from django import template
from django.db.models import Case, IntegerField, Value, When

register = template.Library()


@register.inclusion_tag("calls/_test_chat_panel.html", takes_context=True)
def studio_test_chat(context, agent):
    from agents.models import AgentVersion, Environment

    request = context.get("request")
    workspace = getattr(request, "workspace", None)
    membership = getattr(request, "membership", None)
    if workspace is None or membership is None or not membership.is_admin or agent.workspace_id != workspace.pk:
        return {"show": False}
    versions = (AgentVersion.objects.filter(agent=agent, agent__workspace=workspace)
                .annotate(draft_first=Case(When(state=AgentVersion.State.DRAFT, then=Value(0)), default=Value(1),
                                           output_field=IntegerField()))
                .order_by("draft_first", "-number").only("id", "state", "number", "provider", "transport",
                                                         "secrets", "variables"))
    environments = list(Environment.objects.filter(workspace=workspace).order_by("id"))
    # Names only (never values), so the panel can warn when the chosen environment lacks what the version needs.
    have = _environment_names(workspace)
    for environment in environments:
        secrets, variables = have.get(environment.pk, (set(), set()))
        environment.secret_names = " ".join(sorted(secrets))
        environment.variable_names = " ".join(sorted(variables))
    return {"show": True, "agent": agent, "versions": versions, "environments": environments}


@register.inclusion_tag("calls/_voice_call_panel.html", takes_context=True)
def studio_voice_call(context, agent):
    """"Call this version": the same choices as the test chat (admins only), over the microphone."""
    return studio_test_chat(context, agent)


def _environment_names(workspace) -> dict[int, tuple[set, set]]:
    from agents.models import EnvironmentSecret, EnvironmentVariable

    have: dict[int, tuple[set, set]] = {}
    for env_id, name in (EnvironmentSecret.objects.filter(environment__workspace=workspace).exclude(value="")
                         .values_list("environment_id", "name")):
        have.setdefault(env_id, (set(), set()))[0].add(name)
    for env_id, name in (EnvironmentVariable.objects.filter(environment__workspace=workspace)
                         .values_list("environment_id", "name")):
        have.setdefault(env_id, (set(), set()))[1].add(name)
    return have


@register.inclusion_tag("calls/_call_handovers.html")
def call_handovers(connector, limit: int = 20):
    """The connector's recent handovers (action, destination, time, outcome), newest first."""
    from calls.models import CallHandover

    handovers = (CallHandover.objects.filter(call_session__connector=connector)
                 .select_related("call_session").order_by("-requested_at", "-id")[:limit])
    return {"handovers": handovers}
