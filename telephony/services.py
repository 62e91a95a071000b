"""Settings → Dialer writes: connecting Twilio, phone numbers, caller IDs, local presence.

Every function is keyword-only and transactional. Twilio is reached only through
`dialer.twilio_gateway`; its errors are `dialer.errors` (permanent / transient /
ambiguous). Whenever the phone system's state changes, the sidebar banner cache
is dropped with `phone_system_status_invalidate`.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from telephony import errors
from telephony import twilio_gateway as gateway
from telephony.models import CallerId, NumberPurchase, PhoneNumber, TwilioConnection
from telephony.numbering import area_code, country_of, region_code, region_of
from telephony.selectors import (
    api_key_friendly_name,
    caller_ids_for_dialer,
    outbound_voice_url,
    phone_system_status_invalidate,
    subaccount_friendly_name,
    twiml_app_friendly_name,
    voice_status_callback_url,
)
from workspaces.models import AuditEntry
from workspaces.services import audit_record

logger = logging.getLogger(__name__)

SEARCH_CACHE_SECONDS = 120
VALIDATION_MAX_RETRIES = 5


class DialerError(Exception):
    """A user-facing refusal of ours (not Twilio's): the message is shown next to the form."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class PurchaseInProgress(DialerError):
    pass


class NoCallerId(DialerError):
    pass


def _invalidate_on_commit(workspace_id: int) -> None:
    phone_system_status_invalidate(workspace_id=workspace_id)
    transaction.on_commit(lambda: phone_system_status_invalidate(workspace_id=workspace_id))


def _validation_start(connection: TwilioConnection) -> TwilioConnection:
    """Save the connection as "validating" and queue the check once the transaction commits."""
    connection.status = TwilioConnection.Status.VALIDATING
    connection.error_code = None
    connection.error_message = ""
    connection.retry_message = ""
    if connection.pk:
        connection.save(update_fields=_CONNECTION_FIELDS)
    else:
        connection.save()
    _invalidate_on_commit(connection.workspace_id)
    _enqueue_validation(connection.pk)
    return connection


def _enqueue_validation(connection_id: int) -> None:
    from telephony.tasks import validate_connection

    transaction.on_commit(lambda: validate_connection.delay(connection_id))


CHECK_RUNNING = "Your Twilio credentials are being checked right now; try again in a few seconds."


def connection_for(*, workspace, lock: bool = False) -> TwilioConnection | None:
    """The workspace's connection; `lock=True` locks its row without waiting behind a running validation
    (which holds the lock while it talks to Twilio): DialerError instead of a hanging page."""
    qs = TwilioConnection.objects.filter(workspace=workspace)
    if lock:
        qs = qs.select_for_update(nowait=True)
        try:
            return qs.first()
        except DatabaseError:
            raise DialerError(CHECK_RUNNING) from None
    return qs.first()


def connected_connection(*, workspace) -> TwilioConnection:
    """The workspace's connection when it can be used for Twilio calls; DialerError otherwise."""
    connection = connection_for(workspace=workspace)
    if connection is None or not connection.has_credentials:
        raise DialerError("Connect Twilio first (Settings → Dialer).")
    if connection.status == TwilioConnection.Status.ERROR:
        raise DialerError("The phone system has an error: fix the Twilio credentials first (Settings → Dialer).")
    if connection.status != TwilioConnection.Status.CONNECTED:
        raise DialerError("Twilio credentials are still being checked; try again in a moment.")
    return connection


# ---------------------------------------------------------------------------
# Connecting Twilio


def _forget_account_resources(connection: TwilioConnection) -> None:
    """The account changes: what lived on the old account (key, app, numbers, caller IDs) is not ours any more."""
    connection.api_key_sid = ""
    connection.api_key_secret = ""
    connection.twiml_app_sid = ""
    CallerId.objects.filter(workspace_id=connection.workspace_id).delete()
    NumberPurchase.objects.filter(workspace_id=connection.workspace_id).delete()
    PhoneNumber.objects.filter(workspace_id=connection.workspace_id).delete()


_CONNECTION_FIELDS = ["mode", "account_sid", "auth_token", "status", "error_code", "error_message", "retry_message",
                      "api_key_sid", "api_key_secret", "twiml_app_sid", "validated_at", "updated_at"]


@transaction.atomic
def connection_save_byok(*, workspace, account_sid: str, auth_token: str | None = None, actor=None) -> TwilioConnection:
    """Store BYOK credentials (auth_token None/'' keeps the stored one) and queue their validation."""
    account_sid = account_sid.strip()
    connection = connection_for(workspace=workspace, lock=True)
    if connection is None:
        connection = TwilioConnection(workspace=workspace)
    if not auth_token and not (connection.auth_token and connection.account_sid == account_sid
                               and connection.mode == TwilioConnection.Mode.BYOK):
        raise DialerError("Enter the Auth Token.", field="auth_token")
    if connection.pk and (connection.account_sid != account_sid):
        _forget_account_resources(connection)
    changed_account = bool(connection.pk) and connection.account_sid != account_sid
    connection.mode = TwilioConnection.Mode.BYOK
    connection.account_sid = account_sid
    if auth_token:
        connection.auth_token = auth_token.strip()
    connection = _validation_start(connection)
    audit_record(workspace=workspace, actor=actor, action=AuditEntry.Action.TWILIO_CREDENTIALS_SAVED, target=connection,
                 details={"mode": "byok", "account_sid": account_sid, "changed_account": changed_account,
                          "entered_new": bool(auth_token)})
    return connection


def hosted_available() -> bool:
    return bool(settings.TWILIO_PARENT_ACCOUNT_SID and settings.TWILIO_PARENT_AUTH_TOKEN)


def _parent_credentials() -> gateway.Credentials:
    if not hosted_available():
        raise errors.TwilioNotConfigured(
            "Hosted mode is not available: the platform's parent Twilio account is not configured.")
    return gateway.Credentials(account_sid=settings.TWILIO_PARENT_ACCOUNT_SID,
                               auth_token=settings.TWILIO_PARENT_AUTH_TOKEN)


@transaction.atomic
def connection_start_hosted(*, workspace, actor=None) -> TwilioConnection:
    """Switch to Hosted mode: the validation task creates (or finds) the workspace's sub-account."""
    if not hosted_available():
        raise DialerError("Hosted mode is not available on this installation; use your own Twilio account (BYOK).")
    connection = connection_for(workspace=workspace, lock=True)
    if connection is None:
        connection = TwilioConnection(workspace=workspace)
    if connection.pk and connection.mode != TwilioConnection.Mode.HOSTED:
        _forget_account_resources(connection)
        connection.account_sid = ""
        connection.auth_token = ""
    connection.mode = TwilioConnection.Mode.HOSTED
    connection = _validation_start(connection)
    audit_record(workspace=workspace, actor=actor, action=AuditEntry.Action.TWILIO_HOSTED_STARTED, target=connection,
                 details={"mode": "hosted"})
    return connection


@transaction.atomic
def connection_revalidate(*, workspace) -> TwilioConnection:
    """"Check again" on the settings page: back to validating and queue the task."""
    connection = connection_for(workspace=workspace, lock=True)
    if connection is None or (connection.mode == TwilioConnection.Mode.BYOK and not connection.has_credentials):
        raise DialerError("Enter your Twilio credentials first.")
    connection.status = TwilioConnection.Status.VALIDATING
    connection.retry_message = ""
    connection.save(update_fields=["status", "retry_message", "updated_at"])
    _invalidate_on_commit(workspace.pk)
    _enqueue_validation(connection.pk)
    return connection


def _ensure_subaccount(connection: TwilioConnection) -> None:
    parent = _parent_credentials()
    name = subaccount_friendly_name(connection.workspace)
    # Look before creating: an earlier create may have succeeded without us hearing the answer.
    found = gateway.subaccount_find(parent=parent, friendly_name=name)
    if found is None:
        found = gateway.subaccount_create(parent=parent, friendly_name=name)
    connection.account_sid = found.sid
    connection.auth_token = found.auth_token


def _ensure_api_key(connection: TwilioConnection, creds: gateway.Credentials) -> None:
    if connection.api_key_sid and connection.api_key_secret:
        if gateway.api_key_exists(creds=creds, key_sid=connection.api_key_sid):
            return
    name = api_key_friendly_name(connection.workspace)
    # A key created earlier whose answer we never heard is unusable (Twilio shows a secret only once):
    # delete such leftovers so the account keeps exactly one key of ours.
    for leftover in gateway.api_keys_list(creds=creds):
        if leftover.friendly_name == name and leftover.sid != connection.api_key_sid:
            gateway.api_key_delete(creds=creds, key_sid=leftover.sid)
    key = gateway.api_key_create(creds=creds, friendly_name=name)
    connection.api_key_sid = key.sid
    connection.api_key_secret = key.secret


def _ensure_twiml_app(connection: TwilioConnection, creds: gateway.Credentials) -> None:
    workspace = connection.workspace
    voice_url = outbound_voice_url(workspace)
    status_callback = voice_status_callback_url(workspace)
    app = None
    if connection.twiml_app_sid:
        app = gateway.application_fetch(creds=creds, app_sid=connection.twiml_app_sid)
    if app is None:
        # Look before creating (an earlier ambiguous create, or a deleted row): one app per workspace.
        app = gateway.application_find(creds=creds, friendly_name=twiml_app_friendly_name(workspace))
    if app is None:
        app = gateway.application_create(creds=creds, friendly_name=twiml_app_friendly_name(workspace),
                                         voice_url=voice_url, status_callback=status_callback)
    elif app.voice_url != voice_url or (app.status_callback or "") != status_callback:
        app = gateway.application_update(creds=creds, app_sid=app.sid, voice_url=voice_url,
                                         status_callback=status_callback)
    connection.twiml_app_sid = app.sid


def _caller_id_for_number(number: PhoneNumber, *, is_default: bool) -> CallerId:
    return CallerId(
        workspace_id=number.workspace_id, phone_number=number.phone_number, kind=CallerId.Kind.PROVISIONED,
        phone_number_ref=number, friendly_name=number.friendly_name[:64], is_default=is_default,
        country=number.iso_country or country_of(number.phone_number),
        region=region_code(number.region) or region_of(number.phone_number),
    )


def _numbers_import(connection: TwilioConnection, creds: gateway.Credentials) -> int:
    """BYOK: the numbers already on the account become the workspace's numbers and caller IDs."""
    workspace_id = connection.workspace_id
    remote = gateway.incoming_numbers_list(creds=creds)
    known_sids = set(PhoneNumber.objects.filter(sid__in=[n.sid for n in remote]).values_list("sid", flat=True))
    known_numbers = set(PhoneNumber.objects.filter(workspace_id=workspace_id).values_list("phone_number", flat=True))
    has_primary = PhoneNumber.objects.filter(workspace_id=workspace_id, is_primary=True).exists()
    new = []
    for n in remote:
        if n.sid in known_sids or n.phone_number in known_numbers:
            continue
        new.append(PhoneNumber(
            workspace_id=workspace_id, sid=n.sid, phone_number=n.phone_number, friendly_name=n.friendly_name[:64],
            region=region_of(n.phone_number), iso_country=country_of(n.phone_number), capabilities=n.capabilities,
            is_primary=not has_primary and not new,
        ))
    if not new:
        return 0
    PhoneNumber.objects.bulk_create(new)
    created = list(PhoneNumber.objects.filter(workspace_id=workspace_id, sid__in=[n.sid for n in new]))
    taken = set(CallerId.objects.filter(workspace_id=workspace_id).values_list("phone_number", flat=True))
    has_default = CallerId.objects.filter(workspace_id=workspace_id, is_default=True).exists()
    caller_ids = []
    for number in sorted(created, key=lambda n: (not n.is_primary, n.phone_number)):
        if number.phone_number in taken:
            continue
        caller_ids.append(_caller_id_for_number(number, is_default=not has_default and not caller_ids))
    CallerId.objects.bulk_create(caller_ids)
    return len(created)


def connection_validate(*, connection_id: int) -> TwilioConnection:
    """The validation task's body: the account must be active; then ONE API key and ONE TwiML app.

    Runs under the connection's row lock, so two runs at once are serialized and the second reuses what
    the first created. Progress (sub-account, key, app) is saved even when a later step fails, so a retry
    never creates anything twice. Transient errors are re-raised after saving (the task retries them).
    """
    transient: errors.TwilioError | None = None
    with transaction.atomic():
        connection = (TwilioConnection.objects.select_for_update(of=("self",)).select_related("workspace")
                      .filter(pk=connection_id).first())
        if connection is None or connection.status == TwilioConnection.Status.NOT_CONNECTED:
            return connection
        if connection.mode == TwilioConnection.Mode.BYOK and not connection.has_credentials:
            return connection
        connecting = connection.status == TwilioConnection.Status.VALIDATING
        try:
            if connection.mode == TwilioConnection.Mode.HOSTED and not connection.has_credentials:
                _ensure_subaccount(connection)
            creds = connection.credentials()
            account = gateway.account_fetch(creds=creds)
            if account.status != "active":
                raise errors.TwilioPermanentError(
                    f"The Twilio account {account.sid} is {account.status}; only an active account can make calls.")
            _ensure_api_key(connection, creds)
            _ensure_twiml_app(connection, creds)
            if connecting and connection.mode == TwilioConnection.Mode.BYOK:
                _numbers_import(connection, creds)
        except errors.TwilioError as exc:
            if exc.transient:
                transient = exc
                connection.retry_message = f"Twilio is not answering; retrying… ({exc.display()})"[:255]
            else:
                connection.status = TwilioConnection.Status.ERROR
                connection.error_code = exc.code
                connection.error_message = exc.message
                connection.retry_message = ""
                logger.info("twilio connection refused", extra={"connection_id": connection.pk,
                                                                 "account_sid": connection.account_sid,
                                                                 "code": exc.code})
        else:
            connection.status = TwilioConnection.Status.CONNECTED
            connection.error_code = None
            connection.error_message = ""
            connection.retry_message = ""
            connection.validated_at = timezone.now()
        connection.save(update_fields=_CONNECTION_FIELDS)
        _invalidate_on_commit(connection.workspace_id)
    if transient is not None:
        raise transient
    return connection


@transaction.atomic
def connection_mark_unreachable(*, connection_id: int, error: errors.TwilioError) -> None:
    """The task gave up retrying: a connection being set up ends in error; a connected one stays connected."""
    connection = TwilioConnection.objects.select_for_update().filter(pk=connection_id).first()
    if connection is None:
        return
    if connection.status == TwilioConnection.Status.VALIDATING:
        connection.status = TwilioConnection.Status.ERROR
        connection.error_code = error.code
        connection.error_message = f"Twilio did not answer after several tries: {error.message} Try again later."
    connection.retry_message = ""
    connection.save(update_fields=["status", "error_code", "error_message", "retry_message", "updated_at"])
    _invalidate_on_commit(connection.workspace_id)


def connections_to_revalidate() -> list[int]:
    return list(
        TwilioConnection.objects.filter(
            status__in=[TwilioConnection.Status.CONNECTED, TwilioConnection.Status.ERROR]
        ).exclude(account_sid="").values_list("pk", flat=True)
    )


@transaction.atomic
def local_presence_set(*, workspace, enabled: bool) -> TwilioConnection:
    # A plain UPDATE (no row lock): validation never writes this field, so it need not wait for one.
    updated = TwilioConnection.objects.filter(workspace=workspace).update(local_presence=enabled,
                                                                          updated_at=timezone.now())
    if not updated:
        try:
            with transaction.atomic():
                TwilioConnection.objects.create(workspace=workspace, local_presence=enabled)
        except IntegrityError:
            TwilioConnection.objects.filter(workspace=workspace).update(local_presence=enabled)
    return TwilioConnection.objects.get(workspace=workspace)


# ---------------------------------------------------------------------------
# Phone numbers


def available_numbers_search(*, workspace, country: str, area_code: str, contains: str = "") -> list:
    """Twilio's available local numbers; the same query on the same account is answered from cache briefly."""
    connection = connected_connection(workspace=workspace)
    key = f"dialer:number-search:v1:{connection.account_sid}:{country}:{area_code}:{contains}"
    found = cache.get(key)
    if found is None:
        found = gateway.available_numbers_search(creds=connection.credentials(), country=country,
                                                 area_code=area_code, contains=contains)
        cache.set(key, found, SEARCH_CACHE_SECONDS)
    owned = set(PhoneNumber.objects.filter(workspace=workspace).values_list("phone_number", flat=True))
    return [n for n in found if n.phone_number not in owned]


def number_purchase_start(*, workspace, phone_number: str) -> NumberPurchase:
    """The one intent row for buying this number (a double click finds the same row)."""
    existing = NumberPurchase.objects.filter(workspace=workspace, phone_number=phone_number).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return NumberPurchase.objects.create(workspace=workspace, phone_number=phone_number)
    except IntegrityError:
        return NumberPurchase.objects.get(workspace=workspace, phone_number=phone_number)


def _purchase_lease() -> timedelta:
    return timedelta(seconds=settings.TWILIO_CONNECT_TIMEOUT + settings.TWILIO_READ_TIMEOUT + 5)


def _find_on_account(creds: gateway.Credentials, phone_number: str):
    for n in gateway.incoming_numbers_list(creds=creds, phone_number=phone_number):
        if n.phone_number == phone_number:
            return n
    return None


def number_provision(*, purchase_id: int, locality: str = "", region: str = "", actor=None) -> PhoneNumber:
    """Buy the intent's number exactly once, point it at the TwiML app, record it and register its caller ID.

    The intent is marked `purchasing` (committed) before Twilio is asked; an attempt that finds it
    `purchasing` from an earlier attempt whose outcome is unknown (ambiguous failure, killed worker)
    looks at the account's numbers first. 21422 and other permanent refusals delete the intent: nothing
    is recorded.
    """
    now = timezone.now()
    with transaction.atomic():
        intent = NumberPurchase.objects.select_for_update().select_related("workspace").get(pk=purchase_id)
        if intent.state == NumberPurchase.State.COMPLETED and intent.number_id:
            return intent.number
        if intent.state == NumberPurchase.State.PURCHASING and intent.lease_until and intent.lease_until > now:
            raise PurchaseInProgress(f"{intent.phone_number} is being bought right now.")
        must_look = intent.state == NumberPurchase.State.PURCHASING
        intent.state = NumberPurchase.State.PURCHASING
        intent.attempts += 1
        intent.lease_until = now + _purchase_lease()
        intent.save(update_fields=["state", "attempts", "lease_until", "updated_at"])
    workspace = intent.workspace
    try:
        connection = connected_connection(workspace=workspace)
    except DialerError:
        # Not connected (any more): nothing was sent now; an earlier unknown outcome still needs a look.
        state = NumberPurchase.State.PURCHASING if must_look else NumberPurchase.State.PENDING
        NumberPurchase.objects.filter(pk=intent.pk).update(state=state, lease_until=None)
        raise
    creds = connection.credentials()
    try:
        bought = _find_on_account(creds, intent.phone_number) if must_look else None
        if bought is None:
            bought = gateway.incoming_number_purchase(
                creds=creds, phone_number=intent.phone_number, voice_application_sid=connection.twiml_app_sid,
                friendly_name=f"Callwell · {workspace.name}"[:64],
            )
    except errors.TwilioError as exc:
        if exc.transient:
            # Ambiguous: Twilio may have bought it; stay `purchasing` (lease dropped) so the next try looks first.
            state = NumberPurchase.State.PURCHASING if (exc.ambiguous or must_look) else NumberPurchase.State.PENDING
            NumberPurchase.objects.filter(pk=intent.pk).update(state=state, lease_until=None,
                                                               last_error=exc.display()[:500])
        else:
            NumberPurchase.objects.filter(pk=intent.pk).delete()
        raise
    if connection.twiml_app_sid and bought.voice_application_sid != connection.twiml_app_sid:
        try:
            bought = gateway.incoming_number_update(creds=creds, number_sid=bought.sid,
                                                    voice_application_sid=connection.twiml_app_sid)
        except errors.TwilioError as exc:  # bought is bought: record it; the voice config can be fixed later
            logger.warning("number voice config not updated", extra={"number_sid": bought.sid, "code": exc.code})
    return _number_record(intent_id=intent.pk, bought=bought, locality=locality, region=region, actor=actor)


@transaction.atomic
def _number_record(*, intent_id: int, bought, locality: str, region: str, actor=None) -> PhoneNumber:
    intent = NumberPurchase.objects.select_for_update().get(pk=intent_id)
    workspace_id = intent.workspace_id
    number = PhoneNumber.objects.filter(workspace_id=workspace_id, phone_number=bought.phone_number).first()
    if number is None:
        has_primary = PhoneNumber.objects.filter(workspace_id=workspace_id, is_primary=True).exists()
        number = PhoneNumber.objects.create(
            workspace_id=workspace_id, sid=bought.sid, phone_number=bought.phone_number,
            friendly_name=bought.friendly_name[:64], locality=locality[:64],
            region=(region or region_of(bought.phone_number))[:64], iso_country=country_of(bought.phone_number),
            capabilities=bought.capabilities, is_primary=not has_primary,
        )
        audit_record(workspace=workspace_id, actor=actor, action=AuditEntry.Action.NUMBER_BOUGHT, target=number,
                     details={"phone_number": number.phone_number, "sid": number.sid})
    if not CallerId.objects.filter(workspace_id=workspace_id, phone_number=number.phone_number).exists():
        has_default = CallerId.objects.filter(workspace_id=workspace_id, is_default=True).exists()
        _caller_id_for_number(number, is_default=not has_default).save()
    intent.state = NumberPurchase.State.COMPLETED
    intent.number = number
    intent.lease_until = None
    intent.last_error = ""
    intent.save(update_fields=["state", "number", "lease_until", "last_error", "updated_at"])
    _invalidate_on_commit(workspace_id)
    return number


PURCHASE_RESUME_AFTER = timedelta(minutes=5)


def purchases_to_resume(*, now=None) -> list[int]:
    """Purchases whose outcome is unknown and that nobody is working on any more: the request or worker that sent
    the order died (or its retries ran out) and its lease is over. The periodic task resumes them (look first)."""
    now = now or timezone.now()
    stale = NumberPurchase.objects.filter(state=NumberPurchase.State.PURCHASING,
                                          updated_at__lt=now - PURCHASE_RESUME_AFTER)
    return list(stale.exclude(lease_until__gt=now).values_list("pk", flat=True))


@transaction.atomic
def number_purchase_cancel(*, workspace, purchase_id: int) -> None:
    """Forget a purchase that never completed (after looking that Twilio did not buy it)."""
    intent = NumberPurchase.objects.select_for_update().filter(workspace=workspace, pk=purchase_id).first()
    if intent is None or intent.state == NumberPurchase.State.COMPLETED:
        return
    if intent.state == NumberPurchase.State.PURCHASING:
        raise DialerError("Twilio may still be buying this number; wait for the retry to finish.")
    intent.delete()


@transaction.atomic
def number_set_primary(*, workspace, number_id: int) -> PhoneNumber:
    """The primary number; its caller ID becomes the default "Call from"."""
    number = PhoneNumber.objects.select_for_update().get(workspace=workspace, pk=number_id)
    PhoneNumber.objects.filter(workspace=workspace, is_primary=True).exclude(pk=number.pk).update(is_primary=False)
    number.is_primary = True
    number.save(update_fields=["is_primary"])
    caller_id = CallerId.objects.filter(workspace=workspace, phone_number_ref=number).first()
    if caller_id is not None:
        _caller_id_make_default(workspace=workspace, caller_id=caller_id)
    return number


def number_route_to_dialer(*, workspace, number_id: int) -> PhoneNumber:
    """Send the number's incoming calls to the browser dialer: point its voice configuration at the workspace's
    TwiML app (for numbers imported with another configuration, or taken back from a Studio connector)."""
    number = PhoneNumber.objects.get(workspace=workspace, pk=number_id)
    connection = connection_for(workspace=workspace)
    if connection is None or not connection.has_credentials or not connection.twiml_app_sid:
        raise DialerError("Connect Twilio first: calls ring the dialer through the workspace's TwiML app.")
    # With VoiceApplicationSid set, Twilio ignores the number's VoiceUrl: no need to clear it.
    gateway.incoming_number_update(creds=connection.credentials(), number_sid=number.sid,
                                   voice_application_sid=connection.twiml_app_sid)
    return number


def number_release(*, workspace, number_id: int, actor=None) -> None:
    """Release the number at Twilio, then forget it here (its caller ID too)."""
    number = PhoneNumber.objects.get(workspace=workspace, pk=number_id)
    connection = connection_for(workspace=workspace)
    if connection is None or not connection.has_credentials:
        raise DialerError("Connect Twilio first: the number is released through your Twilio account.")
    gateway.incoming_number_release(creds=connection.credentials(), number_sid=number.sid)
    with transaction.atomic():
        was_primary = number.is_primary
        NumberPurchase.objects.filter(workspace=workspace, phone_number=number.phone_number).delete()
        CallerId.objects.filter(workspace=workspace, phone_number_ref=number).delete()
        PhoneNumber.objects.filter(pk=number.pk).delete()
        audit_record(workspace=workspace, actor=actor, action=AuditEntry.Action.NUMBER_RELEASED, target=number,
                     details={"phone_number": number.phone_number, "sid": number.sid})
        if was_primary:
            successor = PhoneNumber.objects.filter(workspace=workspace).order_by("phone_number").first()
            if successor is not None:
                successor.is_primary = True
                successor.save(update_fields=["is_primary"])
                # As with number_set_primary: the new primary's caller ID takes over a default that went away.
                caller_id = CallerId.objects.filter(workspace=workspace, phone_number_ref=successor).first()
                if caller_id is not None and not CallerId.objects.filter(workspace=workspace, is_default=True).exists():
                    _caller_id_make_default(workspace=workspace, caller_id=caller_id)
        _default_caller_id_ensure(workspace=workspace)
        _invalidate_on_commit(workspace.pk)


# ---------------------------------------------------------------------------
# Caller IDs


def _caller_id_make_default(*, workspace, caller_id: CallerId) -> None:
    CallerId.objects.filter(workspace=workspace, is_default=True).exclude(pk=caller_id.pk).update(is_default=False)
    if not caller_id.is_default:
        caller_id.is_default = True
        caller_id.save(update_fields=["is_default"])


def _default_caller_id_ensure(*, workspace) -> None:
    if CallerId.objects.filter(workspace=workspace, is_default=True).exists():
        return
    first = caller_ids_for_dialer(workspace=workspace).first()
    if first is not None:
        first.is_default = True
        first.save(update_fields=["is_default"])


def caller_id_add_external(*, workspace, phone_number: str, friendly_name: str = "") -> CallerId:
    """Start Twilio's caller-ID validation: Twilio calls the number and the user types the code we show."""
    connection = connected_connection(workspace=workspace)
    try:
        with transaction.atomic():
            caller_id = CallerId.objects.create(
                workspace=workspace, phone_number=phone_number, kind=CallerId.Kind.VERIFIED,
                friendly_name=friendly_name[:64], country=country_of(phone_number), region=region_of(phone_number),
            )
    except IntegrityError:
        raise DialerError(f"{phone_number} is already one of your caller IDs.", field="phone_number") from None
    creds = connection.credentials()
    try:
        validation = gateway.caller_id_validation_request(creds=creds, phone_number=phone_number,
                                                          friendly_name=friendly_name)
    except errors.TwilioError as exc:
        # Already verified on the account: adopt it instead of failing.
        listed = None
        if not exc.transient:
            try:
                listed = next((c for c in gateway.outgoing_caller_ids_list(creds=creds, phone_number=phone_number)
                               if c.phone_number == phone_number), None)
            except errors.TwilioError:
                listed = None
        if listed is None:
            CallerId.objects.filter(pk=caller_id.pk).delete()
            raise
        caller_id.outgoing_caller_id_sid = listed.sid
        caller_id.verified_at = timezone.now()
        caller_id.save(update_fields=["outgoing_caller_id_sid", "verified_at"])
        with transaction.atomic():
            _default_caller_id_ensure(workspace=workspace)
        return caller_id
    caller_id.validation_code = validation.validation_code[:16]
    caller_id.validation_requested_at = timezone.now()
    caller_id.save(update_fields=["validation_code", "validation_requested_at"])
    return caller_id


def caller_ids_check(*, workspace) -> int:
    """Mark pending external numbers verified once Twilio lists them among the account's outgoing caller IDs."""
    pending = list(CallerId.objects.filter(workspace=workspace, kind=CallerId.Kind.VERIFIED, verified_at__isnull=True))
    if not pending:
        return 0
    connection = connected_connection(workspace=workspace)
    listed = {c.phone_number: c for c in gateway.outgoing_caller_ids_list(creds=connection.credentials())}
    verified = 0
    with transaction.atomic():
        for caller_id in pending:
            found = listed.get(caller_id.phone_number)
            if found is None:
                continue
            caller_id.outgoing_caller_id_sid = found.sid
            caller_id.verified_at = timezone.now()
            caller_id.validation_code = ""
            caller_id.save(update_fields=["outgoing_caller_id_sid", "verified_at", "validation_code"])
            verified += 1
        if verified:
            _default_caller_id_ensure(workspace=workspace)
    return verified


def workspaces_with_pending_caller_ids() -> list[int]:
    return list(CallerId.objects.filter(kind=CallerId.Kind.VERIFIED, verified_at__isnull=True)
                .values_list("workspace_id", flat=True).distinct())


def caller_id_remove(*, workspace, caller_id_id: int) -> None:
    caller_id = CallerId.objects.get(workspace=workspace, pk=caller_id_id)
    if caller_id.kind == CallerId.Kind.PROVISIONED:
        raise DialerError("This is one of your phone numbers: release the number to remove it.")
    if caller_id.outgoing_caller_id_sid:
        connection = connection_for(workspace=workspace)
        if connection is not None and connection.has_credentials:
            gateway.outgoing_caller_id_delete(creds=connection.credentials(),
                                              caller_id_sid=caller_id.outgoing_caller_id_sid)
    with transaction.atomic():
        CallerId.objects.filter(pk=caller_id.pk).delete()
        _default_caller_id_ensure(workspace=workspace)


@transaction.atomic
def caller_id_set_default(*, workspace, caller_id_id: int) -> CallerId:
    caller_id = CallerId.objects.select_for_update().get(workspace=workspace, pk=caller_id_id)
    if not caller_id.is_usable:
        raise DialerError("Verify this number before making it the default.")
    _caller_id_make_default(workspace=workspace, caller_id=caller_id)
    return caller_id


def caller_id_choose(*, workspace, to_number: str, requested: str | None = None,
                     local_presence: bool | None = None) -> CallerId:
    """The one function that decides the caller ID of an outgoing call.

    `requested` (a caller ID's E.164 number or id, from the dialer's "Call from") wins when it is one of the
    workspace's usable caller IDs. Otherwise, with local presence on: the caller ID with the callee's area
    code, then one in the callee's state or province, then the default; with it off: the default.
    """
    candidates = list(caller_ids_for_dialer(workspace=workspace))
    if not candidates:
        raise NoCallerId("This workspace has no caller ID yet: provision a number in Settings → Dialer.")
    if requested:
        requested = str(requested).strip()
        for c in candidates:
            if c.phone_number == requested or str(c.pk) == requested:
                return c
        raise NoCallerId(f"{requested} is not one of this workspace's caller IDs.")
    default = next((c for c in candidates if c.is_default), None) or next(
        (c for c in candidates if c.phone_number_ref_id and c.phone_number_ref.is_primary), None) or candidates[0]
    if local_presence is None:
        local_presence = bool(
            TwilioConnection.objects.filter(workspace=workspace).values_list("local_presence", flat=True).first())
    if not local_presence:
        return default

    def best(matches):
        return default if default in matches else matches[0]

    callee_area = area_code(to_number)
    if callee_area:
        same_area = [c for c in candidates if c.area_code == callee_area]
        if same_area:
            return best(same_area)
    callee_region, callee_country = region_of(to_number), country_of(to_number)
    if callee_region:
        same_region = [c for c in candidates if c.region == callee_region
                       and (not c.country or c.country == callee_country)]
        if same_region:
            return best(same_region)
    return default


# ---------------------------------------------------------------------------
# The local Twilio sandbox (devtools/twilio_sandbox): a phone call placed to one of our numbers, offline.


def sandbox_active() -> bool:
    """True when every Twilio request goes to the local sandbox (`bin/run --sandbox`, tests), never in production."""
    return bool(getattr(settings, "TWILIO_API_BASE_URL", ""))


def number_call_simulate(*, workspace, number_id: int, say: str = "") -> str:
    """Ask the sandbox to call the number as Twilio would (its voice URL, the TwiML, streams and callbacks).

    Returns the CallSid. Only against the sandbox: with the real Twilio there is nothing to simulate (call the
    number from a phone)."""
    import json
    import urllib.error
    import urllib.request
    from urllib.parse import urlencode

    if not sandbox_active():
        raise DialerError("Simulated calls need the local Twilio sandbox (bin/run --sandbox); call the number "
                          "from a phone instead.")
    number = PhoneNumber.objects.get(workspace=workspace, pk=number_id)
    connection = connection_for(workspace=workspace)
    if connection is None or not connection.has_credentials:
        raise DialerError("Connect Twilio first.")
    body = urlencode({"AccountSid": connection.account_sid, "To": number.phone_number, "Say": say or ""}).encode()
    url = settings.TWILIO_API_BASE_URL.rstrip("/") + "/_sandbox/simulate_call"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=5) as response:
            return json.load(response)["sid"]
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        raise DialerError(f"The Twilio sandbox did not place the call ({exc}). Is it running?") from None


# ---------------------------------------------------------------------------
# Do-not-call list and the agent-call concurrency limit (both products read them through telephony.selectors)


def do_not_call_add(*, workspace, phone_number: str, reason: str = ""):
    """Add a number (any common format; stored E.164) to the workspace's do-not-call list. Idempotent."""
    from django.core.exceptions import ValidationError

    from telephony import numbering
    from telephony.models import DoNotCallNumber

    try:
        e164 = numbering.to_e164(phone_number, default_country=workspace.default_country)
    except numbering.InvalidNumber as exc:
        raise ValidationError({"phone_number": "Enter a valid phone number."}) from exc
    entry, _ = DoNotCallNumber.objects.get_or_create(workspace=workspace, phone_number=e164,
                                                     defaults={"reason": (reason or "")[:200]})
    return entry


@transaction.atomic
def do_not_call_remove(*, workspace, entry_id: int) -> None:
    from telephony.models import DoNotCallNumber

    DoNotCallNumber.objects.filter(workspace=workspace, pk=entry_id).delete()


@transaction.atomic
def outbound_call_policy_set(*, workspace, max_concurrent_agent_calls: int):
    from telephony.models import OutboundCallPolicy

    policy, _ = OutboundCallPolicy.objects.update_or_create(
        workspace=workspace, defaults={"max_concurrent_agent_calls": max(0, int(max_concurrent_agent_calls))})
    return policy
# Calls that came while the database was down (telephony.spool)


@transaction.atomic
def missed_calls_record(*, entries: list[dict]) -> int:
    """Record spooled webhooks as MissedCall rows, each in the workspace whose Twilio account it names (when one
    does). Idempotent per (call_sid, path, received_at)."""
    from datetime import datetime

    from telephony.models import MissedCall

    accounts = {e.get("account_sid") for e in entries if e.get("account_sid")}
    workspaces = dict(TwilioConnection.objects.filter(account_sid__in=accounts)
                      .values_list("account_sid", "workspace_id"))
    recorded = 0
    for entry in entries:
        try:
            received_at = datetime.fromisoformat(entry["received_at"])
        except (KeyError, TypeError, ValueError):
            continue
        _, created = MissedCall.objects.get_or_create(
            call_sid=entry.get("call_sid", "")[:64], path=entry.get("path", "")[:255], received_at=received_at,
            defaults={"workspace_id": workspaces.get(entry.get("account_sid")),
                      "account_sid": entry.get("account_sid", "")[:64],
                      "from_number": entry.get("from_number", "")[:64], "to_number": entry.get("to_number", "")[:64]})
        recorded += int(created)
    if recorded:
        logger.warning("recorded calls that came during a database outage", extra={"count": recorded})
    return recorded
