"""Reads for browser-dialer calls. Everything is scoped to a workspace; another workspace's rows are not found."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import connection as db
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404

from workspaces import sql
from workspaces.models import Membership

from .models import Call, CallLeg, PhoneNumber, TwilioConnection, Voicemail


_WEBHOOK_CONNECTION_FIELDS = ("id", "workspace_id", "account_sid", "auth_token", "status", "local_presence")
_WEBHOOK_WORKSPACE_FIELDS = ("id", "name", "default_country", "slug")


@dataclass(frozen=True)
class OutboundChecks:
    """Read with the connection for a browser call: is `user_id` a member, is `caller_id_e164` usable."""

    user_id: int | None
    caller_id_e164: str
    is_member: bool
    caller_ok: bool


@functools.cache
def _webhook_sql(vendor: str) -> str:
    from .models import CallerId
    from workspaces.models import Workspace

    col, table = sql.column, sql.table
    fields = ", ".join([*(col(TwilioConnection, f.removesuffix("_id"), "c") for f in _WEBHOOK_CONNECTION_FIELDS),
                        *(col(Workspace, f, "w") for f in _WEBHOOK_WORKSPACE_FIELDS)])
    usable = (f"({col(CallerId, 'kind', 'k')} = %s OR {col(CallerId, 'verified_at', 'k')} IS NOT NULL)")
    return (
        f"SELECT {fields}, "
        f"EXISTS (SELECT 1 FROM {table(Membership)} m WHERE {col(Membership, 'workspace', 'm')} = %s "
        f"AND {col(Membership, 'user', 'm')} = %s), "
        f"EXISTS (SELECT 1 FROM {table(CallerId)} k WHERE {col(CallerId, 'workspace', 'k')} = %s "
        f"AND {col(CallerId, 'phone_number', 'k')} = %s AND {usable}) "
        f"FROM {table(TwilioConnection)} c JOIN {table(Workspace)} w "
        f"ON {col(Workspace, 'id', 'w')} = {col(TwilioConnection, 'workspace', 'c')} "
        f"WHERE {col(TwilioConnection, 'workspace', 'c')} = %s"
    )


def connection_for_webhook(*, workspace_id: int, user_id: int | None = None,
                           caller_id_e164: str = "") -> tuple[TwilioConnection | None, OutboundChecks | None]:
    """The TwilioConnection whose auth token signs /v1/voice/*/<workspace_id> requests (its workspace loaded; the
    other fields deferred), and, in the same query, the outbound webhook's checks for `user_id` and
    `caller_id_e164` (the same rules as `call_services._member_and_caller_id`): one prepared statement for
    every voice webhook (`workspaces.sql.fetch_one`)."""
    from .models import CallerId
    from workspaces.models import Workspace

    row = sql.fetch_one(_webhook_sql(db.vendor), [
        workspace_id, user_id if user_id is not None else -1,
        workspace_id, caller_id_e164 or "", CallerId.Kind.PROVISIONED.value, workspace_id,
    ])
    if row is None:
        return None, None
    n = len(_WEBHOOK_CONNECTION_FIELDS)
    connection = sql.instance(TwilioConnection, _WEBHOOK_CONNECTION_FIELDS, row[:n])
    m = n + len(_WEBHOOK_WORKSPACE_FIELDS)
    connection.workspace = sql.instance(Workspace, _WEBHOOK_WORKSPACE_FIELDS, row[n:m])
    checks = OutboundChecks(user_id=user_id, caller_id_e164=caller_id_e164,
                            is_member=user_id is not None and bool(row[m]),
                            caller_ok=bool(caller_id_e164) and bool(row[m + 1]))
    return connection, checks


@dataclass(frozen=True)
class WebhookCredentials:
    """What a voice webhook needs before it may act: the account and auth token that sign it, the workspace's
    country (local numbers). Kept per process (`webhook_credentials_cached`); every use is re-checked by the
    database in the same request (the guarded INSERT compares `auth_token_stored`, the encrypted text)."""

    workspace_id: int
    account_sid: str
    auth_token: str = field(repr=False)
    auth_token_stored: str = field(repr=False)
    default_country: str


_CREDENTIALS = sql.LocalCache(maxsize=1024)


def connection_and_workspace_sql() -> str:
    """`FROM <connection> c JOIN <workspace> w … WHERE c.workspace_id = %s`: the rows a voice webhook is signed by."""
    from workspaces.models import Workspace

    col, table = sql.column, sql.table
    return (f"FROM {table(TwilioConnection)} c JOIN {table(Workspace)} w "
            f"ON {col(Workspace, 'id', 'w')} = {col(TwilioConnection, 'workspace', 'c')} "
            f"WHERE {col(TwilioConnection, 'workspace', 'c')} = %s")


@functools.cache
def _credentials_sql(vendor: str) -> str:
    from workspaces.models import Workspace

    col = sql.column
    return (f"SELECT {col(TwilioConnection, 'account_sid', 'c')}, {col(TwilioConnection, 'auth_token', 'c')}, "
            f"{col(Workspace, 'default_country', 'w')} {connection_and_workspace_sql()}")


def webhook_credentials_cached(*, workspace_id: int) -> WebhookCredentials | None:
    """The workspace's webhook credentials from this process's cache, read (one query) on a miss."""
    found = _CREDENTIALS.get(workspace_id)
    if found is not None:
        return found
    row = sql.fetch_one(_credentials_sql(db.vendor), [workspace_id])
    if row is None or not row[0] or not row[1]:
        return None
    token = TwilioConnection._meta.get_field("auth_token").from_db_value(row[1], None, db)
    found = WebhookCredentials(workspace_id=workspace_id, account_sid=row[0], auth_token=token,
                               auth_token_stored=row[1], default_country=row[2])
    _CREDENTIALS.set(workspace_id, found)
    return found


def webhook_credentials_forget(*, workspace_id: int | None = None) -> None:
    """Drop the cached credentials (of one workspace, or all): the next webhook reads them again."""
    if workspace_id is None:
        _CREDENTIALS.clear()
    else:
        _CREDENTIALS.forget(workspace_id)


def connection_for_token(*, workspace) -> TwilioConnection | None:
    return (TwilioConnection.objects.filter(workspace=workspace)
            .only("id", "workspace_id", "account_sid", "api_key_sid", "api_key_secret", "twiml_app_sid", "status")
            .first())


@dataclass(frozen=True)
class TokenConnection:
    """The workspace's Twilio connection as the voice token needs it (what `voice_token_issue` reads)."""

    workspace_id: int
    account_sid: str
    api_key_sid: str
    api_key_secret: str = field(repr=False)
    twiml_app_sid: str
    status: str


@dataclass(frozen=True)
class VoiceTokenContext:
    """What `GET /v1/voice/token` needs, read in one query (`voice_token_context`)."""

    user: object  # a User with id, username, password and is_active (for Django's session checks)
    is_member: bool  # of the asked workspace
    connection: TokenConnection | None
    has_number: bool

    @property
    def ready(self) -> bool:
        """`phone_system_status(...).ready`, decided from the rows themselves."""
        return (self.connection is not None and self.connection.status == TwilioConnection.Status.CONNECTED
                and self.has_number)


_TOKEN_CONTEXTS = sql.LocalCache(maxsize=4096)


def token_context_cached(*, user_id: int, workspace_id: int) -> tuple[VoiceTokenContext, tuple] | None:
    """(context, stamp) kept by this process, or None. Use the context only once the generations it was read
    under (the stamp) are confirmed current (`voice.voice_token_admit`)."""
    return _TOKEN_CONTEXTS.get((user_id, workspace_id))


def token_context_keep(*, user_id: int, workspace_id: int, context: VoiceTokenContext, stamp: tuple) -> None:
    _TOKEN_CONTEXTS.set((user_id, workspace_id), (context, stamp))


_TOKEN_SESSIONS = sql.LocalCache(maxsize=8192)


def token_session_cached(*, session_key: str) -> tuple[int, int, bytes] | None:
    """(user id, workspace id, the session's stored bytes) of a session this process verified, or None."""
    return _TOKEN_SESSIONS.get(session_key)


def token_session_keep(*, session_key: str, user_id: int, workspace_id: int, session_raw: bytes) -> None:
    _TOKEN_SESSIONS.set(session_key, (user_id, workspace_id, session_raw))


def token_contexts_forget() -> None:
    _TOKEN_CONTEXTS.clear()
    _TOKEN_SESSIONS.clear()


@functools.cache
def _voice_token_sql(vendor: str) -> str:
    User = get_user_model()
    col, table = sql.column, sql.table
    c = ", ".join(col(TwilioConnection, f, "c") for f in
                  ("id", "account_sid", "api_key_sid", "api_key_secret", "twiml_app_sid", "status"))
    return (
        f"SELECT {col(User, 'id', 'u')}, {col(User, User.USERNAME_FIELD, 'u')}, {col(User, 'password', 'u')}, "
        f"{col(User, 'is_active', 'u')}, {col(Membership, 'id', 'm')}, {c}, "
        f"EXISTS (SELECT 1 FROM {table(PhoneNumber)} p WHERE {col(PhoneNumber, 'workspace', 'p')} = %s) "
        f"FROM {table(User)} u "
        f"LEFT JOIN {table(Membership)} m ON {col(Membership, 'user', 'm')} = {col(User, 'id', 'u')} "
        f"AND {col(Membership, 'workspace', 'm')} = %s "
        f"LEFT JOIN {table(TwilioConnection)} c ON {col(TwilioConnection, 'workspace', 'c')} = %s "
        f"AND {col(Membership, 'id', 'm')} IS NOT NULL "
        f"WHERE {col(User, 'id', 'u')} = %s"
    )


def voice_token_context(*, user_id: int, workspace_id: int) -> VoiceTokenContext | None:
    """The user, their membership of `workspace_id`, its Twilio connection and whether it has a number: one query.

    The voice token endpoint is the dialer's hottest authenticated request (every page load and every
    50 minutes per rep), so it skips Django's separate user, membership and connection lookups; the
    caller still applies Django's session checks (`workspaces.selectors.session_user_verified`).
    None when there is no such user.
    """
    row = sql.fetch_one(_voice_token_sql(db.vendor), [workspace_id, workspace_id, workspace_id, user_id])
    if row is None:
        return None
    uid, username, password, is_active, membership_id, cid, account_sid, key_sid, key_secret, app_sid, status, \
        has_number = row
    User = get_user_model()
    user = sql.instance(User, ("id", User.USERNAME_FIELD, "password", "is_active"),
                        (uid, username, password, is_active))
    connection = None
    if membership_id is not None and cid is not None:
        secret = TwilioConnection._meta.get_field("api_key_secret").from_db_value(key_secret, None, db)
        connection = TokenConnection(workspace_id=workspace_id, account_sid=account_sid, api_key_sid=key_sid,
                                     api_key_secret=secret or "", twiml_app_sid=app_sid, status=status)
    return VoiceTokenContext(user=user, is_member=membership_id is not None, connection=connection,
                             has_number=bool(has_number) and membership_id is not None)


def calls_for_workspace(*, workspace, user_id: int | None = None, direction: str = "", status: str = ""):
    """The call log: newest first, with the rep and the voicemail count."""
    qs = (Call.objects.filter(workspace=workspace).select_related("user")
          .prefetch_related(Prefetch("voicemails", queryset=Voicemail.objects.only("id", "call_id", "status")))
          .order_by("-started_at", "-id"))
    if user_id:
        qs = qs.filter(user_id=user_id)
    if direction:
        qs = qs.filter(direction=direction)
    if status:
        qs = qs.filter(status=status)
    return qs


def call_get(*, workspace, pk: int) -> Call:
    """One call of the workspace with its legs and voicemails, or Http404."""
    qs = Call.objects.filter(workspace=workspace).select_related("user").prefetch_related(
        Prefetch("legs", queryset=CallLeg.objects.select_related("user").order_by("started_at", "id")),
        Prefetch("voicemails", queryset=Voicemail.objects.order_by("created_at")),
    )
    return get_object_or_404(qs, pk=pk)


def voicemail_get(*, workspace, call_pk: int, pk: int) -> Voicemail:
    return get_object_or_404(Voicemail.objects.select_related("call"), workspace=workspace, call_id=call_pk, pk=pk)


def call_log_members(*, workspace):
    """Members offered in the call log's user filter (and the only valid values)."""
    return Membership.objects.filter(workspace=workspace).select_related("user").order_by("user__username")


def recent_voicemails(*, workspace, limit: int = 10):
    return (Voicemail.objects.filter(workspace=workspace).select_related("call", "call__user")
            .order_by("-created_at")[:limit])
