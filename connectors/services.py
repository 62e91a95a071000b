"""All writes of phone connectors, attached numbers and call sessions."""
from __future__ import annotations

import logging
import secrets

from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from calls.models import CallSession
from connectors.models import ConnectorNumber, PhoneConnector
from telephony.public_urls import absolute_url
from webhooks import services as webhook_services
from webhooks.models import EventType
from workspaces.models import AuditEntry
from workspaces.services import audit_record

logger = logging.getLogger(__name__)

STREAM_TOKEN_SALT = "connectors.stream-token.v1"
STREAM_TOKEN_MAX_AGE = 60


class InvalidStreamToken(Exception):
    """The stream's session parameter is forged, expired or was already used."""


# ---------------------------------------------------------------------------
# Stream tokens: the <Parameter name="session"> passed to our real-time endpoint.


def stream_token_issue(*, call_session: CallSession) -> str:
    """A signed, short-lived, single-use token naming this call session.

    Each issue stores a fresh nonce on the session, so only the newest token is
    valid (a retried webhook replaces the token Twilio never used).
    """
    nonce = secrets.token_urlsafe(12)
    CallSession.objects.filter(pk=call_session.pk).update(stream_token_nonce=nonce, stream_token_used_at=None)
    call_session.stream_token_nonce = nonce
    call_session.stream_token_used_at = None
    return _sign(call_session.pk, nonce)


def _sign(pk: int, nonce: str) -> str:
    return signing.TimestampSigner(salt=STREAM_TOKEN_SALT).sign(f"{pk}.{nonce}")


def stream_token_consume(*, token: str, max_age: int = STREAM_TOKEN_MAX_AGE) -> CallSession:
    """The call session the token names; marks the token used (atomically). Raises InvalidStreamToken."""
    try:
        value = signing.TimestampSigner(salt=STREAM_TOKEN_SALT).unsign(token or "", max_age=max_age)
    except signing.SignatureExpired as exc:
        raise InvalidStreamToken("The stream token has expired.") from exc
    except signing.BadSignature as exc:
        raise InvalidStreamToken("The stream token is not valid.") from exc
    pk, _, nonce = value.partition(".")
    if not pk.isdigit() or not nonce:
        raise InvalidStreamToken("The stream token is not valid.")
    # The stream joining means the call was answered: a session still "ringing" (Twilio's status on the first
    # webhook) is now in progress.
    used = CallSession.objects.filter(pk=int(pk), stream_token_nonce=nonce, stream_token_used_at__isnull=True).update(
        stream_token_used_at=timezone.now(),
        status=Case(When(status=CallSession.Status.RINGING, then=Value(CallSession.Status.IN_PROGRESS)),
                    default=F("status")),
    )
    if used != 1:
        raise InvalidStreamToken("The stream token was already used.")
    return CallSession.objects.select_related(
        "connector", "agent_version", "agent_version__agent", "environment", "workspace"
    ).get(pk=int(pk))


# ---------------------------------------------------------------------------
# Connectors


def _check_connector_fields(*, workspace, agent, environment, version_mode, pinned_version):
    from django.core.exceptions import ValidationError

    from agents.models import AgentVersion

    errors = {}
    if agent.workspace_id != workspace.pk:
        errors["agent"] = "Choose one of this workspace's agents."
    if environment.workspace_id != workspace.pk:
        errors["environment"] = "Choose one of this workspace's environments."
    if version_mode == PhoneConnector.VersionMode.PINNED:
        if pinned_version is None:
            errors["pinned_version"] = "Choose the version to pin."
        elif pinned_version.agent_id != agent.pk or pinned_version.state != AgentVersion.State.PUBLISHED:
            errors["pinned_version"] = f"Choose a published version of {agent}."
    if errors:
        raise ValidationError(errors)
    return pinned_version if version_mode == PhoneConnector.VersionMode.PINNED else None


@transaction.atomic
def connector_create(*, workspace, agent, environment, version_mode: str, pinned_version=None, name: str = "",
                     type: str = "twilio", actor=None) -> PhoneConnector:
    """Creates the connector; it starts enabled only when a call could be connected right now."""
    from connectors.selectors import connector_readiness

    pinned = _check_connector_fields(workspace=workspace, agent=agent, environment=environment,
                                     version_mode=version_mode, pinned_version=pinned_version)
    connector = PhoneConnector(workspace=workspace, name=name, type=type, agent=agent, environment=environment,
                               version_mode=version_mode, pinned_version=pinned, enabled=False)
    connector.save()
    _, _, problem = connector_readiness(connector=connector)
    if not problem:
        connector.enabled = True
        connector.save(update_fields=["enabled", "updated_at"])
    if pinned is not None:
        _audit_pinned(connector=connector, actor=actor)
    return connector


def _audit_pinned(*, connector: PhoneConnector, actor) -> None:
    version = connector.pinned_version
    audit_record(workspace=connector.workspace_id, actor=actor, action=AuditEntry.Action.CONNECTOR_VERSION_PINNED,
                 target=connector, details={"agent": str(connector.agent), "version": version.number,
                                            "version_id": version.pk})


@transaction.atomic
def connector_update(*, connector: PhoneConnector, agent, environment, version_mode: str, pinned_version=None,
                     name: str = "", actor=None) -> PhoneConnector:
    from connectors.selectors import connector_readiness

    pinned = _check_connector_fields(workspace=connector.workspace, agent=agent, environment=environment,
                                     version_mode=version_mode, pinned_version=pinned_version)
    previous_pin = connector.pinned_version_id
    connector.name, connector.agent, connector.environment = name, agent, environment
    connector.version_mode, connector.pinned_version = version_mode, pinned
    fields = ["name", "agent", "environment", "version_mode", "pinned_version", "updated_at"]
    if connector.enabled:
        _, _, problem = connector_readiness(connector=connector)
        if problem:
            connector.enabled = False
            fields.append("enabled")
    connector.save(update_fields=fields)
    if pinned is not None and pinned.pk != previous_pin:
        _audit_pinned(connector=connector, actor=actor)
    return connector


@transaction.atomic
def connector_pin(*, connector: PhoneConnector, version) -> PhoneConnector:
    """The connector answers with `version` (a published version of its agent) until changed again."""
    return connector_update(connector=connector, agent=connector.agent, environment=connector.environment,
                            version_mode=PhoneConnector.VersionMode.PINNED, pinned_version=version,
                            name=connector.name)


@transaction.atomic
def connector_enable(*, connector: PhoneConnector) -> PhoneConnector:
    """Refuses (ValidationError naming what is missing) when a call could not be connected."""
    from django.core.exceptions import ValidationError

    from connectors.selectors import connector_readiness

    _, _, problem = connector_readiness(connector=connector)
    if problem:
        raise ValidationError(f"Cannot enable: {problem}")
    connector.enabled = True
    connector.save(update_fields=["enabled", "updated_at"])
    return connector


@transaction.atomic
def connector_disable(*, connector: PhoneConnector) -> PhoneConnector:
    connector.enabled = False
    connector.save(update_fields=["enabled", "updated_at"])
    return connector


def connector_alert_set(*, connector: PhoneConnector, text: str) -> None:
    now = timezone.now()
    PhoneConnector.objects.filter(pk=connector.pk).update(alert_text=text[:2000], alert_at=now)
    connector.alert_text, connector.alert_at = text, now


@transaction.atomic
def connector_alert_clear(*, connector: PhoneConnector) -> None:
    connector.alert_text, connector.alert_at = "", None
    connector.save(update_fields=["alert_text", "alert_at", "updated_at"])


# ---------------------------------------------------------------------------
# Numbers: one-click attach and drift checks


def _credentials(workspace):
    from django.core.exceptions import ValidationError

    from telephony.selectors import connection_get

    connection = connection_get(workspace=workspace)
    if connection is None or not connection.has_credentials:
        raise ValidationError("Connect your Twilio account first (Settings → Dialer).")
    return connection.credentials()


def connector_number_attach(*, connector: PhoneConnector, phone_number, actor=None) -> ConnectorNumber:
    """Point the number's voice URL at the connector (HTTP GET) through the gateway, then record the link.

    The Twilio update is idempotent (same values every time), so nothing is written when it fails and
    trying again is safe. Raises ValidationError (our side) or dialer.errors.TwilioError.
    """
    from django.core.exceptions import ValidationError

    from telephony import twilio_gateway

    if phone_number.workspace_id != connector.workspace_id:
        raise ValidationError("Choose one of this workspace's numbers.")
    creds = _credentials(connector.workspace)
    observed = twilio_gateway.incoming_number_update(
        creds=creds, number_sid=phone_number.sid, voice_url=connector.webhook_url, voice_method="GET",
        voice_application_sid="",
    )
    with transaction.atomic():
        link, _ = ConnectorNumber.objects.select_for_update().update_or_create(
            phone_number=phone_number,
            defaults={"connector": connector, "drift": False, "last_checked_at": timezone.now(),
                      "observed_voice_url": observed.voice_url or "", "observed_voice_method": observed.voice_method or "",
                      "check_error": ""},
        )
        audit_record(workspace=connector.workspace_id, actor=actor, action=AuditEntry.Action.CONNECTOR_NUMBER_ATTACHED,
                     target=connector, details={"phone_number": phone_number.phone_number})
    return link


def connector_number_detach(*, link: ConnectorNumber, actor=None) -> None:
    """Forget the link. When the number still points at this connector, hand it back to the browser dialer
    (the workspace's TwiML app, so its calls ring the members' dialers again), or clear its voice URL when
    the workspace has no TwiML app yet."""
    from telephony import errors, twilio_gateway
    from telephony.selectors import connection_get

    connector = link.connector
    try:
        creds = _credentials(connector.workspace)
        current = twilio_gateway.incoming_number_fetch(creds=creds, number_sid=link.phone_number.sid)
        if (current.voice_url or "") == connector.webhook_url:
            connection = connection_get(workspace=connector.workspace)
            app_sid = connection.twiml_app_sid if connection is not None else ""
            twilio_gateway.incoming_number_update(creds=creds, number_sid=link.phone_number.sid, voice_url="",
                                                  voice_application_sid=app_sid or None)
    except errors.TwilioNotFound:
        pass
    with transaction.atomic():
        ConnectorNumber.objects.filter(pk=link.pk).delete()
        audit_record(workspace=connector.workspace_id, actor=actor, action=AuditEntry.Action.CONNECTOR_NUMBER_DETACHED,
                     target=connector, details={"phone_number": link.phone_number.phone_number})


def connector_numbers_check(*, workspace_id: int) -> dict:
    """Fetch each attached number's voice config and flag drift. Returns counts (checked, drifted, errors)."""
    from connectors.selectors import connector_numbers_for_workspace
    from telephony import errors, twilio_gateway
    from telephony.models import TwilioConnection

    counts = {"checked": 0, "drifted": 0, "errors": 0}
    connection = TwilioConnection.objects.filter(workspace_id=workspace_id).first()
    links = list(connector_numbers_for_workspace(workspace_id=workspace_id))
    if connection is None or not connection.has_credentials:
        return counts
    creds = connection.credentials()
    for link in links:
        now = timezone.now()
        try:
            number = twilio_gateway.incoming_number_fetch(creds=creds, number_sid=link.phone_number.sid)
        except errors.TwilioNotFound:
            drift, url, method, problem = True, "", "", "The number is no longer on the Twilio account."
        except errors.TwilioError as exc:
            counts["errors"] += 1
            ConnectorNumber.objects.filter(pk=link.pk).update(check_error=exc.display()[:255], last_checked_at=now)
            continue
        else:
            url, method = number.voice_url or "", (number.voice_method or "").upper()
            drift = url != link.connector.webhook_url or bool(number.voice_application_sid)
            problem = ""
        counts["checked"] += 1
        counts["drifted"] += int(drift)
        ConnectorNumber.objects.filter(pk=link.pk).update(
            drift=drift, observed_voice_url=url[:500], observed_voice_method=method[:8], last_checked_at=now,
            check_error=problem,
        )
    return counts


# ---------------------------------------------------------------------------
# The incoming-call webhook


PARAMS_OF_INTEREST = (
    "AccountSid", "ApiVersion", "CallStatus", "Direction", "CallerName", "ForwardedFrom", "ParentCallSid",
    "Digits", "SpeechResult", "Confidence", "FromCity", "FromState", "FromCountry", "ToCity", "ToState", "ToCountry",
    "FlowSid", "FlowExecutionSid", "FlowStepSid",
)
APOLOGY = "Sorry, this line cannot take your call right now. Please try again later."


def apology_twiml(text: str = APOLOGY) -> str:
    from twilio.twiml.voice_response import VoiceResponse

    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return str(response)


def relay_attributes(version) -> dict:
    """The version's `<ConversationRelay>` attributes as twilio's helper takes them; unset options are left out
    (Twilio's defaults apply), so a version without options gets the same TwiML as before they existed.

    No welcomeGreeting: the runtime's provider greets (as on Media Streams), so Twilio must not say it too. For
    the same reason no welcomeGreetingInterruptible (it governs only Twilio's welcomeGreeting): the relay engine
    applies the version's setting to the greeting's text tokens instead.
    """
    options = {
        "language": version.language,
        "tts_provider": version.relay_tts_provider,
        "voice": version.voice,
        "transcription_provider": version.relay_transcription_provider,
        "speech_model": version.relay_speech_model,
        "interruptible": version.relay_interruptible,
        "preemptible": True if version.relay_preemptible else None,
        "dtmf_detection": True if version.relay_dtmf_detection else None,
        "hints": ",".join(version.relay_hints or []),
    }
    return {k: v for k, v in options.items() if v}


def _language_attributes(entry: dict) -> dict:
    keys = ("code", "tts_provider", "voice", "transcription_provider", "speech_model")
    return {k: str(entry[k]) for k in keys if isinstance(entry, dict) and entry.get(k)}


def connect_twiml(*, connector: PhoneConnector, version, token: str) -> str:
    from twilio.twiml.voice_response import Connect, VoiceResponse

    from agents.models import AgentVersion

    response = VoiceResponse()
    if version.transport == AgentVersion.Transport.CONVERSATION_RELAY:
        connect = Connect(action=connector.handover_url)
        relay = connect.conversation_relay(url=absolute_url("/v1/stream/relay", websocket=True),
                                           **relay_attributes(version))
        for entry in version.relay_languages or []:
            relay.language(**_language_attributes(entry))
        relay.parameter(name="session", value=token)
        response.append(connect)
    else:
        connect = response.connect()
        stream = connect.stream(url=absolute_url("/v1/stream/media", websocket=True))
        stream.parameter(name="session", value=token)
    return str(response)


def _status_of(params: dict) -> str:
    status = params.get("CallStatus", "")
    return status if status in CallSession.Status.values else CallSession.Status.RINGING


def _answer_existing(*, connector: PhoneConnector, session: CallSession) -> tuple[CallSession, str]:
    """A retried CallSid: the same session, and the same kind of answer it got the first time."""
    if session.rejected_reason or session.agent_version is None:
        return session, apology_twiml()
    if session.stream_token_used_at is not None and session.ended_at is None:
        # The call's stream already joined and is running: Twilio got its answer, so this is not a retry but a
        # replayed request. A fresh token would let a second stream join the live call.
        logger.warning("webhook replayed for a live call: no new stream token",
                       extra={"connector_id": connector.pk, "call_sid": session.call_sid})
        return session, apology_twiml()
    return session, connect_twiml(connector=connector, version=session.agent_version,
                                  token=stream_token_issue(call_session=session))


def inbound_call_answer(*, connector: PhoneConnector, params: dict) -> tuple[CallSession | None, str]:
    """Resolve the version, record the call session (idempotent on CallSid) and build the TwiML answer.

    No Twilio or model-provider calls. The common case (a new call, Published mode) costs four
    round trips to the database: the connector (loaded by the view), the environment's names,
    one INSERT that also stores the stream token's nonce, and the environment's webhook endpoints
    (plus one INSERT of the call.started events when some want it). A retried CallSid hits the unique
    constraint and gets the same session and the same kind of answer as the first attempt.
    """
    from connectors.selectors import connector_readiness

    call_sid = (params.get("CallSid") or "").strip()[:64]
    if not call_sid:
        return None, apology_twiml()
    if not connector.enabled:
        version, problem = None, "The connector is disabled."
    else:
        version, _, problem = connector_readiness(connector=connector)
    interesting = {k: v for k, v in params.items() if k in PARAMS_OF_INTEREST and v != ""}
    values = {
        "workspace_id": connector.workspace_id, "connector": connector,
        "agent_version": None if problem else version, "environment_id": connector.environment_id,
        "from_number": params.get("From", "")[:64], "to_number": params.get("To", "")[:64],
        "direction": (params.get("Direction") or "inbound")[:24],
        "status": CallSession.Status.REJECTED if problem else _status_of(params),
        "rejected_reason": problem[:255], "params": interesting,
        "stream_token_nonce": "" if problem else secrets.token_urlsafe(12), "stream_token_used_at": None,
    }
    try:
        # The session and its call.started event commit together (a savepoint when nested, so a duplicate does
        # not spoil the outer transaction).
        with transaction.atomic():
            session = CallSession.objects.create(call_sid=call_sid, **values)
            if not problem:
                webhook_services.call_event_record(session=session, type=EventType.CALL_STARTED)
    except IntegrityError:
        session = CallSession.objects.select_related("agent_version").get(call_sid=call_sid)
        if session.connector_id == connector.pk:
            return _answer_existing(connector=connector, session=session)
        # The same call routed on to another connector (e.g. an IVR in front of several agents).
        values["params"] = {**session.params, **interesting}
        for key, value in values.items():
            setattr(session, key, value)
        session.save(update_fields=[k.removesuffix("_id") for k in values])
    if problem:
        connector_alert_set(connector=connector, text=f"Call {call_sid} from {values['from_number'] or 'unknown'} "
                                                      f"was not connected: {problem}")
        logger.warning("inbound call rejected", extra={"connector_id": connector.pk, "call_sid": call_sid,
                                                        "reason": problem})
        return session, apology_twiml()
    return session, connect_twiml(connector=connector, version=version, token=_sign(session.pk, session.stream_token_nonce))


