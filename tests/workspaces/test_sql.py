"""workspaces.sql: the hand-written one-row reads and the idempotent insert used by the hot requests."""
import pytest
from django.db import connection

from dialer.models import Call, TwilioConnection
from tests.factories import TwilioConnectionFactory
from workspaces import sql

pytestmark = pytest.mark.django_db


def _connection_row(pk):
    query = (f"SELECT {sql.column(TwilioConnection, 'id', 'c')}, {sql.column(TwilioConnection, 'auth_token', 'c')}, "
             f"{sql.column(TwilioConnection, 'local_presence', 'c')} FROM {sql.table(TwilioConnection)} c "
             f"WHERE {sql.column(TwilioConnection, 'id', 'c')} = %s")
    return sql.fetch_one(query, [pk])


def test_fetch_one_reads_a_row_and_is_counted(workspace, django_assert_num_queries):
    twilio = TwilioConnectionFactory(workspace=workspace, local_presence=True)
    with django_assert_num_queries(1):
        row = _connection_row(twilio.pk)
    assert row[0] == twilio.pk
    assert row[1] != twilio.auth_token  # stored encrypted
    assert _connection_row(-1) is None


def test_instance_decrypts_converts_and_defers_the_rest(workspace, django_assert_num_queries):
    twilio = TwilioConnectionFactory(workspace=workspace, local_presence=True, api_key_sid="SK" + "1" * 32)
    row = _connection_row(twilio.pk)
    loaded = sql.instance(TwilioConnection, ("local_presence", "id", "auth_token"), (row[2], row[0], row[1]))
    assert (loaded.pk, loaded.auth_token, loaded.local_presence) == (twilio.pk, twilio.auth_token, True)
    assert loaded.local_presence is True
    assert loaded.get_deferred_fields() >= {"api_key_sid", "workspace_id"}
    with django_assert_num_queries(1):  # like .only(): a deferred field is loaded on access
        assert loaded.api_key_sid == "SK" + "1" * 32


def test_instance_refuses_fields_the_backend_converts():
    with pytest.raises(TypeError):
        sql.instance(Call, ("started_at",), (None,))


def test_insert_unless_exists(workspace, django_assert_num_queries):
    first = Call(workspace=workspace, sid="CA" + "a" * 32, direction=Call.Direction.OUTBOUND, to_number="+1",
                 from_number="+2")
    with django_assert_num_queries(1):
        assert sql.insert_unless_exists(first, conflict="sid") is True
    stored = Call.objects.get(sid=first.sid)
    assert stored.pk == first.pk and stored.started_at is not None and stored.status == Call.Status.INITIATED
    again = Call(workspace=workspace, sid=first.sid, direction=Call.Direction.INBOUND)
    assert sql.insert_unless_exists(again, conflict="sid") is False  # no IntegrityError, no change
    assert again.pk is None
    assert Call.objects.get(sid=first.sid).direction == Call.Direction.OUTBOUND


@pytest.mark.django_db(transaction=True)
def test_a_dead_reused_connection_is_replaced_instead_of_failing(workspace):
    """What CONN_HEALTH_CHECKS does with a SELECT 1, fetch_one does with the query itself."""
    if connection.vendor != "postgresql":
        pytest.skip("a server-side disconnect needs PostgreSQL")
    twilio = TwilioConnectionFactory(workspace=workspace)
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:  # the server ends this session, as a restart or a proxy would
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    from django.db import connections

    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()
    connection.health_check_done = False  # a new request reusing the connection
    assert _connection_row(twilio.pk)[0] == twilio.pk
    connection.health_check_done = True  # within one request a failure is an error, as in Django


def test_a_guarded_insert_only_inserts_when_the_guard_holds(workspace):
    from workspaces.models import Workspace

    guard = (f"EXISTS (SELECT 1 FROM {sql.table(Workspace)} w WHERE {sql.column(Workspace, 'id', 'w')} = %s "
             f"AND {sql.column(Workspace, 'default_country', 'w')} = %s)")
    refused = Call(workspace=workspace, sid="CA" + "b" * 32, direction=Call.Direction.OUTBOUND)
    assert sql.insert_unless_exists(refused, conflict="sid", guard=guard, guard_params=[workspace.pk, "ZZ"]) is False
    assert not Call.objects.filter(sid=refused.sid).exists()
    allowed = Call(workspace=workspace, sid="CA" + "b" * 32, direction=Call.Direction.OUTBOUND, user=None,
                   duration=None)
    assert sql.insert_unless_exists(allowed, conflict="sid", guard=guard,
                                    guard_params=[workspace.pk, workspace.default_country]) is True
    stored = Call.objects.get(sid=allowed.sid)
    assert (stored.pk, stored.user_id, stored.duration, stored.started_at is not None) == (allowed.pk, None, None,
                                                                                           True)
    # a duplicate is refused the same way (the caller's careful path tells the two apart)
    again = Call(workspace=workspace, sid=allowed.sid, direction=Call.Direction.OUTBOUND)
    assert sql.insert_unless_exists(again, conflict="sid", guard=guard,
                                    guard_params=[workspace.pk, workspace.default_country]) is False


def test_local_cache_is_a_bounded_lru():
    cache = sql.LocalCache(maxsize=3)
    entries = {name: object() for name in "abcd"}
    for name in "abc":
        cache.set(name, entries[name])
    assert cache.get("a") is entries["a"]  # a is now the most recent
    cache.set("d", entries["d"])
    assert len(cache) == 3 and cache.get("b") is None
    assert [cache.get(name) for name in "acd"] == [entries[name] for name in "acd"]
    cache.forget("a")
    assert cache.get("a") is None
    cache.clear()
    assert len(cache) == 0


def test_local_cache_is_safe_across_threads():
    import threading

    cache = sql.LocalCache(maxsize=64)

    def work(t):
        for i in range(2000):
            key = f"{t}-{i % 100}"
            cache.set(key, i)
            cache.get(f"{(t + 1) % 8}-{i % 100}")
            if i % 7 == 0:
                cache.forget(key)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) <= 64
