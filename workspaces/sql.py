"""One-row reads for the few hot requests that skip the ORM (the voice token, Twilio's voice webhooks).

Each of those requests needs a handful of rows of fixed shape; through the ORM, building and compiling
such a query costs several times what PostgreSQL spends answering it (see docs/performance.md). The
callers write plain SQL from the models' `_meta` (table and column names) and read it with `fetch_one`,
which keeps Django's semantics that matter here:

- the query goes through Django's cursor wrapper, so `assertNumQueries`, `CaptureQueriesContext` and
  database error wrapping see it like any other query (while queries are recorded it runs on Django's own
  cursor, whose SQL Django can print);
- `CONN_HEALTH_CHECKS`: instead of Django's `SELECT 1` before the request's first query (one more round
  trip), the query itself is the check: when it fails because a reused connection died, the connection is
  closed and the query runs once more on a new one (reads only, never inside a transaction);
- on PostgreSQL the statement is bound server-side, and prepared once per connection when the connection
  allows it (`OPTIONS["prepare_threshold"]`, set by `config.settings.base.prepared_hot_queries` unless
  `DB_PREPARE_HOT_QUERIES=0`), which saves the planner's work on every later request (a four-table join
  plans in ~0.15 ms here).
"""
from __future__ import annotations

import functools

from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections


def quote(name: str, using: str = DEFAULT_DB_ALIAS) -> str:
    return connections[using].ops.quote_name(name)


def table(model, using: str = DEFAULT_DB_ALIAS) -> str:
    return quote(model._meta.db_table, using)


def column(model, field: str, alias: str, using: str = DEFAULT_DB_ALIAS) -> str:
    """`alias."column"` of a model field (`workspace` gives its `workspace_id` column)."""
    return f"{alias}.{quote(model._meta.get_field(field).column, using)}"


@functools.cache
def _preparing_cursor_class():
    from django.db.backends.postgresql.base import ServerBindingCursor

    class PreparingCursor(ServerBindingCursor):
        def execute(self, query, params=None, *, prepare=None, binary=None):
            return super().execute(query, params, prepare=True if prepare is None else prepare, binary=binary)

    return PreparingCursor


def _raw_cursor(db):
    if db.vendor == "postgresql" and not db.queries_logged:  # recorded queries need Django's own cursor
        return _preparing_cursor_class()(db.connection)
    return db.create_cursor()


def _fetch_one(db, sql: str, params) -> tuple | None:
    db.ensure_connection()
    db.validate_thread_sharing()
    with db.wrap_database_errors:
        raw = _raw_cursor(db)
    cursor = db.make_debug_cursor(raw) if db.queries_logged else db.make_cursor(raw)
    with cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def fetch_one(sql: str, params, *, using: str = DEFAULT_DB_ALIAS) -> tuple | None:
    """The first row of `sql` (placeholders `%s`), or None."""
    db = connections[using]
    needs_check = (db.connection is not None and db.health_check_enabled and not db.health_check_done
                   and not db.in_atomic_block)
    if not needs_check:
        return _fetch_one(db, sql, params)
    db.health_check_done = True  # this query is the check
    try:
        return _fetch_one(db, sql, params)
    except (OperationalError, InterfaceError):
        if db.is_usable():
            raise  # the query failed, not the connection
        db.close()
    return _fetch_one(db, sql, params)


@functools.cache
def _insert_fields(model, without_pk: bool, conflict: str) -> tuple[tuple, str]:
    meta = model._meta
    fields = tuple(f for f in meta.local_concrete_fields if not (f.primary_key and without_pk))
    return fields, meta.get_field(conflict).column


@functools.cache
def _insert_sql(model, fields: tuple, conflict: str, guard: str, vendor: str, using: str) -> str:
    db = connections[using]
    columns = ", ".join(quote(f.column, using) for f in fields)
    pk = quote(model._meta.pk.column, using)
    tail = f"ON CONFLICT ({quote(conflict, using)}) DO NOTHING RETURNING {pk}"
    if not guard:
        return f"INSERT INTO {table(model, using)} ({columns}) VALUES ({', '.join(['%s'] * len(fields))}) {tail}"
    # INSERT … SELECT: PostgreSQL types a bare parameter in a SELECT list as text, so each is cast to its column.
    if vendor == "postgresql":
        values = ", ".join(f"CAST(%s AS {f.cast_db_type(db)})" for f in fields)
    else:
        values = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {table(model, using)} ({columns}) SELECT {values} WHERE {guard} {tail}"


def insert_unless_exists(obj, *, conflict: str, guard: str = "", guard_params=(),
                         using: str = DEFAULT_DB_ALIAS) -> bool:
    """INSERT `obj` (a new model instance) unless a row with the same unique `conflict` field exists.

    True when inserted (obj.pk is set), False when the row was there already (obj is untouched; the caller
    loads the existing row). One statement, `INSERT … ON CONFLICT DO NOTHING RETURNING`, so a retried
    webhook racing the first attempt never raises, and a retry after a dropped connection is safe. Model
    defaults and `pre_save` (auto_now_add) apply as in `save()`; no signals are sent, so use it only for
    models that have no receivers (the call records written by Twilio's webhooks).

    `guard` (SQL, placeholders `%s` filled from `guard_params`) makes the insert conditional, checked in the
    same statement: False then also means "the guard did not hold", and the caller takes its careful path.
    A hot webhook uses it to check what it read from a cache (credentials, membership, readiness) in the one
    round trip it needs anyway.
    """
    db = connections[using]
    fields, conflict_column = _insert_fields(type(obj), obj.pk is None, conflict)
    values = [f.get_db_prep_save(f.pre_save(obj, True), db) for f in fields]
    query = _insert_sql(type(obj), fields, conflict_column, guard, db.vendor, using)
    row = fetch_one(query, [*values, *guard_params], using=using)
    if row is None:
        return False
    obj.pk = row[0]
    obj._state.adding = False
    obj._state.db = using
    return True


_CONVERTED_BY_BACKEND = ("DateTimeField", "DateField", "TimeField", "DecimalField", "UUIDField", "JSONField",
                         "DurationField")


def instance(model, attnames, values, *, using: str = DEFAULT_DB_ALIAS):
    """A model instance from a `fetch_one` row, like the ORM's `.only(*attnames)`: the other fields deferred.

    `attnames` and `values` pair up (any order). Values go through the fields' `from_db_value` (encrypted
    fields decrypt) and booleans are made bool (SQLite answers 0/1). Types the database backend converts
    (dates, decimals, UUIDs, JSON) are refused: select them through the ORM.
    """
    db = connections[using]
    given = dict(zip(attnames, values))
    names, ordered = [], []
    for field in model._meta.concrete_fields:
        if field.attname not in given:
            continue
        if field.get_internal_type() in _CONVERTED_BY_BACKEND:
            raise TypeError(f"{model.__name__}.{field.name}: read {field.get_internal_type()} through the ORM")
        value = given[field.attname]
        if value is not None and field.get_internal_type() == "BooleanField":
            value = bool(value)
        if hasattr(field, "from_db_value"):
            value = field.from_db_value(value, None, db)
        names.append(field.attname)
        ordered.append(value)
    return model.from_db(using, names, ordered)


class LocalCache:
    """A small per-process LRU (thread-safe) for rows a hot request re-reads on every call.

    Only for values whose use is re-checked by the database in the same request (e.g. a guarded INSERT,
    `insert_unless_exists(guard=…)`): an entry can be stale, so it must never be the only check.
    """

    def __init__(self, maxsize: int = 1024):
        import collections
        import threading

        self._data = collections.OrderedDict()
        self._lock = threading.Lock()
        self.maxsize = maxsize

    def get(self, key):
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def set(self, key, value) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def forget(self, key) -> None:
        with self._lock:
            self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
