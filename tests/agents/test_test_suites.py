"""Test suites: scenarios per agent, run against a version + environment with the text engine."""
import pytest
from django.test import Client

from agents.forms import TestScenarioForm
from agents.models import TestResult, TestRun, TestScenario
from calls.services import test_runs
from tests.calls.engine.conftest import make_call_setup
from tests.factories import MembershipFactory, UserFactory
from workspaces.models import Membership

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup():
    return make_call_setup()


@pytest.fixture
def admin(setup):
    user = UserFactory(username="tess")
    MembershipFactory(workspace=setup.workspace, user=user, role=Membership.Role.ADMIN)
    client = Client()
    client.force_login(user)
    return client


def _scenario(setup, name, turns, expectations):
    return TestScenario.objects.create(agent=setup.version.agent, name=name, caller_turns=turns,
                                       expectations=expectations)


def test_the_form_reads_turns_and_expectations_as_people_write_them():
    form = TestScenarioForm({"name": "Order status", "caller_turns": "Hi\n\n  Where is my order?  \n",
                             "action_called": "order_lookup", "action_arguments": "order=42\nzip = 10115",
                             "reply_contains": "order, shipped", "ended": "on", "max_turns": "3"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["caller_turns"] == ["Hi", "Where is my order?"]
    assert form.expectations() == [
        {"kind": "action_called", "value": "order_lookup", "arguments": {"order": "42", "zip": "10115"}},
        {"kind": "reply_contains", "value": "order"}, {"kind": "reply_contains", "value": "shipped"},
        {"kind": "ended"}, {"kind": "max_turns", "value": 3}]


@pytest.mark.parametrize("data, field, message", [
    ({"caller_turns": " \n "}, "caller_turns", "required"),
    ({"caller_turns": "x", "action_arguments": "order 42", "action_called": "a"}, "action_arguments", "name=value"),
    ({"caller_turns": "x", "action_arguments": "order=42"}, "action_arguments", "Name the action"),
])
def test_the_form_says_what_is_wrong_next_to_the_field(data, field, message):
    form = TestScenarioForm({"name": "S", **data})
    assert not form.is_valid()
    assert message in " ".join(form.errors[field])


def test_a_run_plays_each_scenario_and_judges_it(setup, django_capture_on_commit_callbacks):
    _scenario(setup, "Sales", ["I want to talk to sales"],
              [{"kind": "action_called", "value": "transfer_to_sales"}, {"kind": "ended"}])
    _scenario(setup, "Hours", ["When are you open?"], [{"kind": "reply_contains", "value": "nine to five"},
                                                        {"kind": "reply_not_contains", "value": "closed"}])
    _scenario(setup, "Pizza", ["Do you sell pizza?"], [{"kind": "reply_contains", "value": "pizza"},
                                                        {"kind": "max_turns", "value": 1}])
    with django_capture_on_commit_callbacks(execute=True):
        run = test_runs.test_run_start(agent=setup.version.agent, version=setup.version,
                                       environment=setup.environment)
    run.refresh_from_db()
    assert (run.status, run.total, run.completed, run.passed) == ("done", 3, 3, 2)
    results = {r.scenario_name: r for r in run.results.all()}
    assert results["Sales"].passed and results["Hours"].passed
    sales = results["Sales"].conversation
    assert sales[0] == {"role": "agent", "text": "Hello, this is Ava."}
    assert sales[1] == {"role": "caller", "text": "I want to talk to sales"}
    assert sales[-1]["kind"] == "handover" and sales[-1]["action"] == "transfer_to_sales"
    pizza = results["Pizza"]
    assert not pizza.passed
    assert "No reply contains “pizza”." in pizza.failures
    assert any("turns (at most 1 expected)" in f for f in pizza.failures)


def test_a_second_delivery_of_the_task_changes_nothing(setup, django_capture_on_commit_callbacks):
    _scenario(setup, "Hours", ["When are you open?"], [{"kind": "reply_contains", "value": "nine"}])
    with django_capture_on_commit_callbacks(execute=True):
        run = test_runs.test_run_start(agent=setup.version.agent, version=setup.version,
                                       environment=setup.environment)
    test_runs.test_run_execute(run_id=run.pk)
    assert TestResult.objects.filter(run=run).count() == 1
    assert TestRun.objects.get(pk=run.pk).completed == 1


def test_a_provider_that_cannot_start_fails_the_run_with_its_reason(setup, django_capture_on_commit_callbacks):
    setup.version.provider = "openai_chat"  # needs OPENAI_API_KEY, which the environment lacks
    setup.version.save()
    _scenario(setup, "Hours", ["When are you open?"], [])
    with django_capture_on_commit_callbacks(execute=True):
        run = test_runs.test_run_start(agent=setup.version.agent, version=setup.version,
                                       environment=setup.environment)
    run.refresh_from_db()
    result = run.results.first()
    assert run.status == "failed" or (result is not None and not result.passed)
    if run.status == "failed":
        assert "OPENAI_API_KEY" in run.error
    else:
        assert any("OPENAI_API_KEY" in f for f in result.failures)


def test_admins_write_scenarios_and_run_the_suite_from_the_pages(setup, admin, django_capture_on_commit_callbacks):
    agent = setup.version.agent
    page = admin.post(f"/studio/agents/{agent.pk}/tests/new/", {
        "name": "Sales", "caller_turns": "I want to talk to sales", "action_called": "transfer_to_sales",
        "ended": "on"}, follow=True)
    assert "Scenario Sales saved." in page.content.decode()
    assert "Calls an action: transfer_to_sales" in page.content.decode()
    duplicate = admin.post(f"/studio/agents/{agent.pk}/tests/new/", {"name": "Sales", "caller_turns": "x"})
    assert "already has a scenario named Sales" in duplicate.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(f"/studio/agents/{agent.pk}/tests/run/",
                              {"version": setup.version.pk, "environment": setup.environment.pk})
    run = TestRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/studio/agents/{agent.pk}/tests/runs/{run.pk}/"
    body = admin.get(response["Location"]).content.decode()
    assert "1/1 passed" in body and "Hello, this is Ava." in body
    publish = admin.get(f"/studio/agents/{agent.pk}/publish/").content.decode()
    assert "The draft's last run" in publish and "1/1 passed" in publish


def test_members_read_results_but_cannot_run_or_edit(setup):
    user = UserFactory(username="mia")
    MembershipFactory(workspace=setup.workspace, user=user, role=Membership.Role.MEMBER)
    client = Client()
    client.force_login(user)
    agent = setup.version.agent
    assert client.get(f"/studio/agents/{agent.pk}/tests/").status_code == 200
    assert client.post(f"/studio/agents/{agent.pk}/tests/new/", {"name": "x", "caller_turns": "y"}).status_code == 403
    assert client.post(f"/studio/agents/{agent.pk}/tests/run/", {}).status_code == 403


def test_another_workspace_cannot_see_or_run_the_suite(setup):
    other = make_call_setup()
    user = UserFactory(username="otto")
    MembershipFactory(workspace=other.workspace, user=user, role=Membership.Role.ADMIN)
    client = Client()
    client.force_login(user)
    agent = setup.version.agent
    _scenario(setup, "Hours", ["When are you open?"], [])
    assert client.get(f"/studio/agents/{agent.pk}/tests/").status_code == 404
    assert client.post(f"/studio/agents/{agent.pk}/tests/run/",
                       {"version": setup.version.pk, "environment": setup.environment.pk}).status_code == 404
    # Their own agent with our environment's id: not a choice.
    response = client.post(f"/studio/agents/{other.version.agent.pk}/tests/run/",
                           {"version": other.version.pk, "environment": setup.environment.pk})
    assert response.status_code == 302 and not TestRun.objects.exists()
