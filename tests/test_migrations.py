"""The move of the models into `telephony/` and `calls/` (SeparateDatabaseAndState, tables unchanged) loses nothing.

The schema is built as it was before the move, one row is written in every table of the apps involved through
the historical models, then the database is migrated to the latest state and every row is found through the
current models with the same id and values (encrypted secrets decrypt to the same text). Content types (and
the permissions that point at them) follow the models, and migrating back to the old nodes works too.
Plain ORM only (no vendor SQL), so it holds on SQLite and PostgreSQL.
"""
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.apps import apps as current_apps
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder
from django.db.models import CharField
from django.db.models.functions import Cast

OLD_NODES = [
    ("workspaces", "0002_worker_heartbeat"),
    ("dialer", "0003_calls_legs_voicemails"),
    ("agents", "0003_environment_recording"),
    ("connectors", "0003_calls_studio"),
]
# Before the move these apps did not exist (webhooks and knowledge came later, on top of agents' newer migrations).
NEW_APPS = ["telephony", "calls", "webhooks", "knowledge"]
OLD_APPS = [label for label, _ in OLD_NODES]

# Where each model of the old layout lives now: (old app, model) -> new app.
MOVED = {
    ("dialer", "twilioconnection"): "telephony",
    ("dialer", "phonenumber"): "telephony",
    ("dialer", "callerid"): "telephony",
    ("dialer", "numberpurchase"): "telephony",
    ("connectors", "callsession"): "calls",
    ("connectors", "callhandover"): "calls",
    ("connectors", "callturn"): "calls",
    ("connectors", "callrecording"): "calls",
    ("connectors", "callintervention"): "calls",
}

AUTH_TOKEN = "auth-token-0123456789abcdef0123456789"
API_KEY_SECRET = "api-key-secret-abcdefghijklmnopqrstuvwx"
ENV_SECRET = "sk-live-environment-secret"
AUTH_CONNECTOR_SECRET = "client-secret-of-the-auth-connector"
WHEN = datetime(2026, 11, 2, 9, 30, 15, 123000, tzinfo=dt_timezone.utc)


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor


def _old_targets():
    return OLD_NODES + [(label, None) for label in NEW_APPS]


def _latest_targets():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def _historical_apps():
    """The models as they were at the old nodes, with the other apps (auth, contenttypes, …) as they are now."""
    graph = MigrationExecutor(connection).loader.graph
    others = [node for node in graph.leaf_nodes() if node[0] not in OLD_APPS + NEW_APPS
              and not any(app in NEW_APPS for app, _ in graph.forwards_plan(node))]
    return MigrationExecutor(connection).loader.project_state(OLD_NODES + others).apps


def _values(model, pk, fields):
    return model.objects.filter(pk=pk).values(*fields).get()


def _write_old_rows(apps) -> dict:
    """One row in every table of the old layout, through the historical models: {(app, model): (pk, values)}."""
    m = apps.get_model
    user = m("auth", "User").objects.create(username="migrated", email="m@example.test", password="!")
    workspace = m("workspaces", "Workspace").objects.create(name="Before the move", slug="before-the-move",
                                                            default_country="GB")
    rows = {
        "membership": m("workspaces", "Membership").objects.create(workspace=workspace, user=user, role="admin"),
        "workerheartbeat": m("workspaces", "WorkerHeartbeat").objects.create(
            hostname="worker-1", last_seen_at=WHEN, beats=7, last_source="beat"),
        "twilioconnection": m("dialer", "TwilioConnection").objects.create(
            workspace=workspace, mode="byok", account_sid="AC" + "a" * 32, auth_token=AUTH_TOKEN,
            status="connected", api_key_sid="SK" + "b" * 32, api_key_secret=API_KEY_SECRET,
            twiml_app_sid="AP" + "c" * 32, validated_at=WHEN, local_presence=True, error_code=20003,
            retry_message="retrying"),
    }
    number = rows["phonenumber"] = m("dialer", "PhoneNumber").objects.create(
        workspace=workspace, sid="PN" + "d" * 32, phone_number="+442079460018", friendly_name="London",
        locality="London", region="ENG", iso_country="GB", capabilities={"voice": True, "sms": False},
        is_primary=True)
    rows["callerid"] = m("dialer", "CallerId").objects.create(
        workspace=workspace, phone_number="+442079460018", kind="provisioned", phone_number_ref=number,
        is_default=True, country="GB", region="ENG", verified_at=WHEN)
    rows["numberpurchase"] = m("dialer", "NumberPurchase").objects.create(
        workspace=workspace, phone_number="+442079460019", state="purchasing", attempts=2,
        lease_until=WHEN + timedelta(minutes=5), last_error="Twilio was busy", number=number)
    call = rows["call"] = m("dialer", "Call").objects.create(
        workspace=workspace, sid="CA" + "e" * 32, direction="outbound", user=user, from_number="+442079460018",
        to_number="+14155550142", caller_id="+442079460018", status="completed", started_at=WHEN,
        answered_at=WHEN + timedelta(seconds=3), ended_at=WHEN + timedelta(seconds=63), duration=60)
    rows["callleg"] = m("dialer", "CallLeg").objects.create(
        call=call, sid="CA" + "f" * 32, kind="number", to_number="+14155550142", status="completed",
        duration=58, user=user)
    rows["voicemail"] = m("dialer", "Voicemail").objects.create(
        workspace=workspace, call=call, recording_sid="RE" + "1" * 32, call_sid=call.sid, status="completed",
        duration=12)

    agent = rows["agent"] = m("agents", "Agent").objects.create(workspace=workspace, name="Reception",
                                                                slug="reception")
    version = rows["agentversion"] = m("agents", "AgentVersion").objects.create(
        agent=agent, number=1, state="published", greeting="Hello", instructions="Be brief.", language="en-GB",
        voice="Polly.Amy", transport="conversation_relay", secrets=["API_KEY"], variables=["COMPANY"],
        scripted_answers=[{"q": "hours", "a": "9 to 5"}], handover_rules={"sales": "+442079460020"},
        published_at=WHEN, published_by=user)
    agent.latest_version = version
    agent.save(update_fields=["latest_version"])
    rows["handoveraction"] = m("agents", "HandoverAction").objects.create(
        version=version, name="sales", destination="+442079460020", description="Sales team")
    environment = rows["environment"] = m("agents", "Environment").objects.create(
        workspace=workspace, kind="production", recording_enabled=True, recording_retention_days=30)
    rows["environmentsecret"] = m("agents", "EnvironmentSecret").objects.create(
        environment=environment, name="API_KEY", value=ENV_SECRET)
    rows["environmentvariable"] = m("agents", "EnvironmentVariable").objects.create(
        environment=environment, name="COMPANY", value="Acme Ltd")
    rows["authconnector"] = m("agents", "AuthConnector").objects.create(
        environment=environment, name="crm", kind="oauth2", config={"token_url": "https://crm.example.test/t"},
        secret=AUTH_CONNECTOR_SECRET)

    connector = rows["phoneconnector"] = m("connectors", "PhoneConnector").objects.create(
        workspace=workspace, name="Front desk", agent=agent, environment=environment, version_mode="pinned",
        pinned_version=version, identifier="migrated-connector-identifier", alert_text="Earlier problem",
        alert_at=WHEN)
    rows["connectornumber"] = m("connectors", "ConnectorNumber").objects.create(
        connector=connector, phone_number=number, drift=True, last_checked_at=WHEN,
        observed_voice_url="https://elsewhere.example.test/voice", observed_voice_method="POST",
        check_error="drifted")
    session = rows["callsession"] = m("connectors", "CallSession").objects.create(
        workspace=workspace, connector=connector, agent_version=version, environment=environment,
        call_sid="CA" + "2" * 32, from_number="+14155550142", to_number="+442079460018", status="completed",
        params={"AccountSid": "AC" + "a" * 32, "Digits": "2"}, stream_token_nonce="nonce-123",
        stream_token_used_at=WHEN, ended_at=WHEN + timedelta(minutes=2), runtime_error="", recording_error="")
    rows["callhandover"] = m("connectors", "CallHandover").objects.create(
        call_session=session, action_name="sales", destination="+442079460020", transport="conversation_relay",
        outcome="answered", outcome_at=WHEN, dial_call_sid="CA" + "3" * 32, dial_duration=40,
        answer_twiml="<Response/>", detail="answered by sales")
    rows["callturn"] = m("connectors", "CallTurn").objects.create(
        call_session=session, seq=1, role="caller", text="I'd like sales, please.", heard=True, started_at=WHEN)
    rows["callrecording"] = m("connectors", "CallRecording").objects.create(
        call_session=session, recording_sid="RE" + "4" * 32, status="completed", duration=120, channels=2,
        source="StartCallRecordingAPI", recording_started_at=WHEN, callbacks=2)
    rows["callintervention"] = m("connectors", "CallIntervention").objects.create(
        call_session=session, user=user, username="migrated", kind="whisper", detail="Offer the discount",
        result="delivered")

    found = {}
    for model in _models_of(apps):
        name = model._meta.model_name
        obj = workspace if name == "workspace" else rows[name]
        fields = [f.attname for f in model._meta.concrete_fields]
        found[(model._meta.app_label, name)] = (obj.pk, fields, _values(model, obj.pk, fields))
    return found


def _models_of(apps):
    return [model for label in OLD_APPS for model in apps.get_app_config(label).get_models()]


def _content_types_at_old_labels(apps) -> dict:
    """The content types (and a permission each) as an old installation has them: {(old app, model): pk}."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    pks = {}
    for (old, model), new in MOVED.items():
        ContentType.objects.filter(app_label=new, model=model).delete()  # never both: the test DB has the new ones
        content_type, _ = ContentType.objects.get_or_create(app_label=old, model=model)
        Permission.objects.get_or_create(content_type=content_type, codename=f"view_{model}",
                                         defaults={"name": f"Can view {model}"})
        pks[(old, model)] = content_type.pk
    return pks


def _assert_rows_found(found, lookup):
    for (app_label, name), (pk, fields, values) in found.items():
        model = lookup(app_label, name)
        assert model.objects.filter(pk=pk).exists(), f"{app_label}.{name} #{pk} was lost"
        assert _values(model, pk, fields) == values, f"{app_label}.{name} #{pk} changed"


@pytest.mark.django_db(transaction=True)
def test_the_move_to_telephony_and_calls_keeps_every_row():
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    try:
        _migrate(_old_targets())
        applied = MigrationRecorder(connection).applied_migrations()
        assert set(OLD_NODES) <= set(applied) and not any(app in NEW_APPS for app, _ in applied)
        assert ("dialer", "0004_telephony_move_out") not in applied
        old_apps = _historical_apps()
        assert not any(config.label in NEW_APPS for config in old_apps.get_app_configs())
        found = _write_old_rows(old_apps)
        # Every table of the old layout has its row (a model added to the layout must be added above).
        assert set(found) == {(m._meta.app_label, m._meta.model_name)
                                                   for m in _models_of(old_apps)}
        assert len(found) == 24
        content_types = _content_types_at_old_labels(old_apps)
        stored = (old_apps.get_model("dialer", "TwilioConnection").objects
                  .annotate(raw=Cast("auth_token", CharField(max_length=500))).values_list("raw", flat=True).get())
        assert stored != AUTH_TOKEN and stored.startswith("gAAAA")  # Fernet ciphertext, not the token

        _migrate(_latest_targets())
        ContentType.objects.clear_cache()

        # Every row, through the current models, with the same id and values.
        def current(app_label, name):
            return current_apps.get_model(MOVED.get((app_label, name), app_label), name)

        _assert_rows_found(found, current)
        from calls.models import CallHandover, CallIntervention, CallRecording, CallSession, CallTurn
        from telephony.models import CallerId, NumberPurchase, PhoneNumber, TwilioConnection

        connection_row = TwilioConnection.objects.select_related("workspace").get(
            pk=found[("dialer", "twilioconnection")][0])
        assert connection_row.auth_token == AUTH_TOKEN and connection_row.api_key_secret == API_KEY_SECRET
        assert connection_row.workspace.slug == "before-the-move"
        assert connection_row.credentials().auth_token == AUTH_TOKEN
        number = PhoneNumber.objects.get(pk=found[("dialer", "phonenumber")][0])
        assert number.caller_ids.get().pk == CallerId.objects.get().pk
        assert number.connector_link.connector.identifier == "migrated-connector-identifier"
        assert NumberPurchase.objects.get().number_id == number.pk
        session = CallSession.objects.select_related("connector", "agent_version").get()
        assert session.connector.name == "Front desk" and session.agent_version.language == "en-GB"
        assert [CallTurn.objects.get().call_session_id, CallHandover.objects.get().call_session_id,
                CallRecording.objects.get().call_session_id, CallIntervention.objects.get().call_session_id] == \
            [session.pk] * 4
        from agents.models import AuthConnector, EnvironmentSecret

        assert EnvironmentSecret.objects.get().value == ENV_SECRET
        assert AuthConnector.objects.get().secret == AUTH_CONNECTOR_SECRET
        from dialer.models import Call

        assert Call.objects.get().voicemails.get().recording_sid == "RE" + "1" * 32

        # Content types (and the permissions on them) moved with the models: same rows, new app label.
        for (old, model), new in MOVED.items():
            content_type = ContentType.objects.get(pk=content_types[(old, model)])
            assert (content_type.app_label, content_type.model) == (new, model)
            assert content_type.model_class() is current_apps.get_model(new, model)
            assert ContentType.objects.get_for_model(current_apps.get_model(new, model)).pk == content_type.pk
            assert not ContentType.objects.filter(app_label=old, model=model).exists()
            assert Permission.objects.filter(content_type=content_type, codename=f"view_{model}").exists()

        # And back: the old nodes read the same rows, the content types go home.
        _migrate(_old_targets())
        assert not any(app in NEW_APPS for app, _ in MigrationRecorder(connection).applied_migrations())
        old_apps = _historical_apps()
        _assert_rows_found(found, old_apps.get_model)
        OldContentType = old_apps.get_model("contenttypes", "ContentType")
        for (old, model), new in MOVED.items():
            assert OldContentType.objects.get(pk=content_types[(old, model)]).app_label == old
        assert old_apps.get_model("dialer", "TwilioConnection").objects.get().auth_token == AUTH_TOKEN
    finally:
        _migrate(_latest_targets())
        ContentType.objects.clear_cache()
    # The latest schema is back for the tests that follow.
    assert not MigrationExecutor(connection).migration_plan(_latest_targets())
