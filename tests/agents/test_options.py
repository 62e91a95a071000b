"""A version's options are declared once (agents.options): the form, the version page, the publish diff and the
copy on publish/restore/new draft all follow the declaration, so a field added to a group shows up everywhere.
Every test here walks the declaration (each option's `example`), none lists fields by hand."""
import pytest
from django.utils.html import escape

from agents import options, selectors, services
from agents.forms import ROW_EDITORS, AgentVersionForm
from agents.models import AgentVersion
from tests.agents.factories import AgentFactory, draft_of, published_agent

ALL = [o for o in options.OPTIONS.values()]
EXAMPLES = {o.name: o.example for o in ALL}
# AgentVersion's own bookkeeping: not options of what the agent is.
NOT_OPTIONS = {"id", "agent", "number", "state", "restored_from", "action_requirements", "created_at", "updated_at",
               "published_at", "published_by"}


def test_every_version_field_is_declared_in_exactly_one_group():
    names = [o.name for g in options.GROUPS for o in g.options]
    assert len(names) == len(set(names))
    model_fields = {f.name for f in AgentVersion._meta.concrete_fields} - NOT_OPTIONS
    assert set(names) == model_fields
    assert AgentVersion.CONTENT_FIELDS == names
    for key, attr in (("relay", "RELAY_FIELDS"), ("cascaded", "CASCADED_FIELDS"), ("chat", "CHAT_FIELDS"), ("analysis", "ANALYSIS_FIELDS")):
        assert getattr(AgentVersion, attr) == list(options.group(key).fields)


def test_every_example_is_a_valid_non_default_value(workspace):
    draft = draft_of(AgentFactory(workspace=workspace))
    for option in ALL:
        assert getattr(draft, option.name) != option.example, option.name
    services.agent_draft_update(draft=draft, **EXAMPLES)  # full_clean: the examples are valid values


def test_the_form_edits_every_option():
    form = AgentVersionForm()
    grouped = {f.name for fields in form.option_fields.values() for f in fields}
    for option in ALL:
        if option.edit == options.ROWS:
            assert option.name in ROW_EDITORS and option.name in options.ROW_LINES, option.name
        else:
            assert option.form_name in form.fields and option.form_name in grouped, option.name
    assert not form.other_fields()


@pytest.mark.parametrize("group", [g.key for g in options.GROUPS])
def test_version_page_shows_each_groups_values(admin_client, workspace, group):
    agent = AgentFactory(workspace=workspace)
    services.agent_draft_update(draft=draft_of(agent), **EXAMPLES)
    version = services.agent_publish(agent=agent)
    page = admin_client.get(f"/studio/agents/{agent.pk}/versions/{version.pk}/").content.decode()
    assert f'data-testid="version-group-{group}"' in page
    assert escape(options.group(group).legend) in page
    for option in options.group(group).options:
        start = page.index(f'data-testid="version-{option.name}"')
        cell = page[start:page.index("</dd>", start)]
        text = options.value_text(option.name, option.example)
        assert text, option.name
        for line in text.splitlines():
            assert escape(line) in cell, (option.name, line, cell)
        assert f"<dt>{escape(options.label(option.name))}</dt>" in page


def test_version_page_says_what_an_empty_option_means(admin_client, workspace):
    agent = published_agent(workspace)
    version = agent.versions.get(number=1)
    page = admin_client.get(f"/studio/agents/{agent.pk}/versions/{version.pk}/").content.decode()
    for option in ALL:
        if option.blank:
            start = page.index(f'data-testid="version-{option.name}"')
            assert escape(option.blank) in page[start:page.index("</dd>", start)], option.name
    # A group the version does not use is still shown, with why it is not used.
    assert escape(options.group("cascaded").unused_note) in page


def test_version_page_query_count(admin_client, workspace, django_assert_max_num_queries):
    agent = published_agent(workspace)
    version = agent.versions.get(number=1)
    with django_assert_max_num_queries(12):
        assert admin_client.get(f"/studio/agents/{agent.pk}/versions/{version.pk}/").status_code == 200


@pytest.mark.parametrize("name", [o.name for o in ALL])
def test_diff_covers_each_field_of_each_group(workspace, name):
    agent = published_agent(workspace)
    draft = draft_of(agent)
    services.agent_draft_update(draft=draft, **{name: EXAMPLES[name]})
    diff = selectors.version_diff(draft=draft, base=selectors.latest_published_get(agent_id=agent.pk))
    assert [c.field for c in diff.fields] == [name]
    change = diff.fields[0]
    assert change.label == options.label(name)
    assert change.new_text == options.value_text(name, EXAMPLES[name]) != ""


def test_publish_restore_and_new_draft_copy_every_option(workspace):
    agent = AgentFactory(workspace=workspace)
    draft = draft_of(agent)
    services.agent_draft_update(draft=draft, **EXAMPLES)
    v1 = services.agent_publish(agent=agent)
    v1.refresh_from_db()
    assert v1.content() == EXAMPLES

    blank = {name: AgentVersion._meta.get_field(name).get_default() for name in EXAMPLES}
    services.agent_draft_update(draft=draft, **{**blank, "greeting": "changed"})
    services.agent_publish(agent=agent)
    restored = services.agent_version_restore(version=v1)
    restored.refresh_from_db()
    assert restored.content() == EXAMPLES

    restored.delete()  # the next draft starts from the latest published version (v2)
    services.agent_draft_update(draft=services.agent_draft_ensure(agent=agent), **EXAMPLES)
    services.agent_publish(agent=agent)
    draft_of(agent).delete()
    assert services.agent_draft_ensure(agent=agent).content() == EXAMPLES
