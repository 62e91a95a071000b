"""A handover action's kind (cold / warm) and its further numbers: declared on the action form, versioned (copied on
publish and restore), in the publish diff, and what a live call's context carries."""
import pytest

from agents import selectors, services
from agents.models import HandoverAction
from calls.engine.context import _version_fields

from .factories import AgentFactory, draft_of

pytestmark = pytest.mark.django_db


def test_the_action_form_saves_a_warm_handover_with_more_numbers(admin_client, workspace):
    agent = AgentFactory(workspace=workspace)
    response = admin_client.post(f"/studio/agents/{agent.pk}/actions/", {
        "type": "phone", "kind": "warm", "name": "transfer_to_sales", "destination": "+31 20 123 4567",
        "more_destinations": "+31 20 123 4568, +31201234569", "description": "Sales questions."})
    assert response.status_code == 302, response.content.decode()[:2000]
    action = HandoverAction.objects.get(name="transfer_to_sales")
    assert (action.kind, action.destination, action.more_destinations) == (
        "warm", "+31201234567", ["+31201234568", "+31201234569"])
    page = admin_client.get(f"/studio/agents/{agent.pk}/actions/").content.decode()
    assert "warm" in page and "+31201234568" in page
    edit = admin_client.get(f"/studio/agents/{agent.pk}/actions/{action.pk}/").content.decode()
    assert 'value="+31201234568, +31201234569"' in edit


def test_more_numbers_need_a_warm_handover_and_bad_numbers_are_named(admin_client, workspace):
    agent = AgentFactory(workspace=workspace)
    response = admin_client.post(f"/studio/agents/{agent.pk}/actions/", {
        "type": "phone", "kind": "cold", "name": "transfer_to_sales", "destination": "+31201234567",
        "more_destinations": "+31201234568"})
    assert "Only a warm handover tries more numbers" in response.content.decode()
    response = admin_client.post(f"/studio/agents/{agent.pk}/actions/", {
        "type": "phone", "kind": "warm", "name": "transfer_to_sales", "destination": "+31201234567",
        "more_destinations": "+31201234568, not a number"})
    assert "not a number" in response.content.decode()
    assert not HandoverAction.objects.exists()


def test_a_form_without_a_kind_keeps_the_cold_handover(admin_client, workspace):
    agent = AgentFactory(workspace=workspace)
    admin_client.post(f"/studio/agents/{agent.pk}/actions/", {
        "type": "phone", "name": "transfer_to_sales", "destination": "+31201234567"})
    assert HandoverAction.objects.get().kind == HandoverAction.Kind.COLD


def test_the_kind_is_versioned_in_the_diff_and_reaches_the_call(workspace):
    agent = AgentFactory(workspace=workspace)
    draft = draft_of(agent)
    action = services.handover_action_create(draft=draft, name="transfer_to_sales", destination="+31201234567")
    v1 = services.agent_publish(agent=agent)
    services.handover_action_update(action=action, name="transfer_to_sales", destination="+31201234567",
                                    kind="warm", more_destinations=["+31201234568"])
    diff = selectors.version_diff(draft=draft, base=v1)
    [change] = diff.actions
    assert change.change == "changed" and change.old["kind"] == "cold" and change.new["kind"] == "warm"
    assert change.new["more_destinations"] == ["+31201234568"]
    v2 = services.agent_publish(agent=agent)
    copied = v2.actions.get()
    assert (copied.kind, copied.more_destinations) == ("warm", ["+31201234568"])
    [spec] = _version_fields(v2)["actions"]
    assert spec.kind == "warm" and spec.destinations == ("+31201234567", "+31201234568")
    services.agent_version_restore(version=v1)
    assert draft.actions.get().kind == "cold"


def test_an_another_agent_handover_names_the_agent_not_a_number(admin_client, workspace):
    from agents.models import Environment

    agent = AgentFactory(workspace=workspace, name="Ava")
    bea = AgentFactory(workspace=workspace, name="Bea")
    other = AgentFactory(name="Elsewhere")  # another workspace: not offered, refused
    environment = Environment.objects.filter(workspace=workspace).first() or services.environments_ensure(
        workspace=workspace)[0]
    page = admin_client.get(f"/studio/agents/{agent.pk}/actions/").content.decode()
    assert "Bea" in page and "Elsewhere" not in page
    refused = admin_client.post(f"/studio/agents/{agent.pk}/actions/", {
        "type": "phone", "kind": "agent", "name": "to_billing", "target_agent": other.pk})
    assert refused.status_code == 200 and not HandoverAction.objects.exists()
    missing = admin_client.post(f"/studio/agents/{agent.pk}/actions/", {
        "type": "phone", "kind": "agent", "name": "to_billing"})
    assert "Choose the agent who takes the call" in missing.content.decode()
    response = admin_client.post(f"/studio/agents/{agent.pk}/actions/", {
        "type": "phone", "kind": "agent", "name": "to_billing", "target_agent": bea.pk, "target_version_number": "2",
        "target_environment": environment.pk, "destination": "+31201234567"})
    assert response.status_code == 302, response.content.decode()[:3000]
    action = HandoverAction.objects.get()
    assert (action.kind, action.destination, action.target_agent, action.target_version_number,
            action.target_environment) == ("agent", "", bea, 2, environment)
    assert "agent Bea v2" in admin_client.get(f"/studio/agents/{agent.pk}/actions/").content.decode()
    phone = admin_client.post(f"/studio/agents/{agent.pk}/actions/", {
        "type": "phone", "kind": "cold", "name": "to_sales"})
    assert "Enter the phone number the call goes to" in phone.content.decode()


def test_a_dialer_reps_handover_rings_a_team_of_members_and_is_versioned(admin_client, workspace):
    from tests.factories import MembershipFactory, UserFactory

    agent = AgentFactory(workspace=workspace)
    rita = UserFactory(username="rita")
    MembershipFactory(workspace=workspace, user=rita)
    stranger = UserFactory(username="stranger")  # not a member: not offered, refused
    page = admin_client.get(f"/studio/agents/{agent.pk}/actions/").content.decode()
    assert "Team of reps" in page and "rita" in page and "stranger" not in page
    refused = admin_client.post(f"/studio/agents/{agent.pk}/actions/", {
        "type": "phone", "kind": "reps", "name": "to_reps", "reps": [stranger.pk]})
    assert refused.status_code == 200 and not HandoverAction.objects.exists()
    response = admin_client.post(f"/studio/agents/{agent.pk}/actions/", {
        "type": "phone", "kind": "reps", "name": "to_reps", "reps": [rita.pk], "destination": "+31201234567"})
    assert response.status_code == 302, response.content.decode()[:3000]
    action = HandoverAction.objects.get()
    assert (action.kind, action.destination, action.reps) == ("reps", "", [rita.pk])
    assert "dialer reps (team of 1)" in admin_client.get(f"/studio/agents/{agent.pk}/actions/").content.decode()

    v1 = services.agent_publish(agent=agent)
    services.handover_action_update(action=action, name="to_reps", destination="", kind="reps", reps=[])
    [change] = selectors.version_diff(draft=action.version, base=v1).actions
    assert change.old["reps"] == [rita.pk] and change.new["reps"] == []
    assert v1.actions.get().reps == [rita.pk]
    [spec] = _version_fields(v1)["actions"]
    assert spec.kind == "reps"
