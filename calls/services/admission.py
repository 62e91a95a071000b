"""A call's admission: the `CallSession`, the signed single-use stream token, and the TwiML that connects the call
to our real-time endpoint (Media Streams or ConversationRelay). Callers: the connectors' incoming-call webhook
(`connectors.services.inbound_call_answer`), the fallback to the agent after a failed dial
(`calls.services.handovers`), and any other way a call reaches an agent (e.g. an outbound agent call):

    admitted = call_session_admit(call_sid=..., workspace_id=..., connector=..., environment_id=..., version=...,
                                  problem="", params={...}, action_url=...)
    admitted.session, admitted.twiml, admitted.retry       # retry: this CallSid was answered before
    stream_twiml(version=..., token=..., action_url=..., say="")  # <Connect><Stream|ConversationRelay>
    stream_token_issue(call_session=...) / stream_token_consume(token=...)   # the consumer's side

A CallSid's answer is stable (a replayed, validly signed webhook changes nothing): while the call lives it gets the
same TwiML with the same token (single-use: once Twilio's stream joined, the replay's copy is refused at the
socket); once the call has ended it gets the apology, never a new token.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from calls.models import CallSession
from telephony.public_urls import absolute_url
from webhooks import services as webhook_services
from webhooks.models import EventType

logger = logging.getLogger("calls.services.admission")

STREAM_TOKEN_SALT = "connectors.stream-token.v1"  # unchanged when admission moved here: issued tokens stay valid
STREAM_TOKEN_MAX_AGE = 60
APOLOGY = "Sorry, this line cannot take your call right now. Please try again later."
PARAMS_OF_INTEREST = (
    "AccountSid", "ApiVersion", "CallStatus", "Direction", "CallerName", "ForwardedFrom", "ParentCallSid",
    "Digits", "SpeechResult", "Confidence", "FromCity", "FromState", "FromCountry", "ToCity", "ToState", "ToCountry",
    "FlowSid", "FlowExecutionSid", "FlowStepSid",
)


class InvalidStreamToken(Exception):
    """The stream's session parameter is forged, expired or was already used."""


# ---------------------------------------------------------------------------
# Stream tokens: the <Parameter name="session"> passed to our real-time endpoint.


class _SignerAt(signing.TimestampSigner):
    """A TimestampSigner dated at a given time (the same token again for the same call session)."""

    def __init__(self, at: float | None, **kwargs):
        super().__init__(**kwargs)
        self._at = at

    def timestamp(self):
        return super().timestamp() if self._at is None else signing.b62_encode(int(self._at))


def _sign(pk: int, nonce: str, at: float | None = None) -> str:
    return _SignerAt(at, salt=STREAM_TOKEN_SALT).sign(f"{pk}.{nonce}")


def stream_token_issue(*, call_session: CallSession) -> str:
    """A new signed, short-lived, single-use token naming this call session, for a new stream of the call (the
    agent again after a failed dial). Stores a fresh nonce: earlier tokens are no longer valid."""
    nonce = secrets.token_urlsafe(12)
    CallSession.objects.filter(pk=call_session.pk).update(stream_token_nonce=nonce, stream_token_used_at=None)
    call_session.stream_token_nonce = nonce
    call_session.stream_token_used_at = None
    return _sign(call_session.pk, nonce)


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
# TwiML


def apology_twiml(text: str = APOLOGY) -> str:
    from twilio.twiml.voice_response import VoiceResponse

    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return str(response)


def relay_attributes(version) -> dict:
    """The version's `<ConversationRelay>` attributes as twilio's helper takes them; unset options are left out
    (Twilio's defaults apply), so a version without options gets the same TwiML as before they existed.

    A version with a keypad rule gets `dtmfDetection` on (its rules could never fire otherwise).

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
        "dtmf_detection": True if version.relay_dtmf_detection or keypad_rules(version) else None,
        "hints": ",".join(version.relay_hints or []),
    }
    return {k: v for k, v in options.items() if v}


def keypad_rules(version) -> list[dict]:
    """The version's rules a key press triggers (`handover_rules` with a digit). ConversationRelay sends key presses
    only with `dtmfDetection` on (Twilio's default is off), so a version with any gets it whatever the option says."""
    return [r for r in (getattr(version, "handover_rules", None) or [])
            if isinstance(r, dict) and str(r.get("digit") or "").strip()]


def _language_attributes(entry: dict) -> dict:
    keys = ("code", "tts_provider", "voice", "transcription_provider", "speech_model")
    return {k: str(entry[k]) for k in keys if isinstance(entry, dict) and entry.get(k)}


def stream_twiml(*, version, token: str, action_url: str = "", say: str = "", language: str = "") -> str:
    """`<Connect>` to the version's transport with the session token (`say`: a message spoken first).
    `action_url`: where ConversationRelay posts when its session ends (the handover webhook)."""
    from twilio.twiml.voice_response import Connect, VoiceResponse

    from agents.models import AgentVersion

    response = VoiceResponse()
    if say and language:
        response.say(say, language=language)
    elif say:
        response.say(say)
    if version.transport == AgentVersion.Transport.CONVERSATION_RELAY:
        connect = Connect(action=action_url) if action_url else Connect()
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


# ---------------------------------------------------------------------------
# Admission


@dataclass
class Admitted:
    session: CallSession | None
    twiml: str
    retry: bool = False  # this CallSid was answered before (same connector): the same kind of answer again


def _status_of(params: dict) -> str:
    status = params.get("CallStatus", "")
    return status if status in CallSession.Status.values else CallSession.Status.RINGING


def _answer_again(*, session: CallSession, action_url: str) -> str:
    """A CallSid answered before: the same answer while the call lives, a refusal once it has ended."""
    if session.rejected_reason or session.agent_version is None:
        return apology_twiml()
    if session.ended_at is not None:
        # The call is over: a replayed (validly signed) request must not re-arm it with a new stream.
        logger.warning("webhook replayed for an ended call: refused", extra={"call_sid": session.call_sid})
        return apology_twiml()
    # The same token as the first answer (same nonce, same date): a retry before the stream joined does not
    # invalidate Twilio's copy, and after it joined the copy is refused at the socket (single use).
    return stream_twiml(version=session.agent_version, action_url=action_url,
                        token=_sign(session.pk, session.stream_token_nonce, at=session.started_at.timestamp()))


def call_session_admit(*, call_sid: str, workspace_id: int, environment_id: int | None, version, problem: str,
                       params: dict, connector=None, action_url: str = "") -> Admitted:
    """Record the call session (idempotent on CallSid) and build the TwiML answer.

    `version` answers (None with `problem`, the reason the call cannot be connected: the caller hears the apology
    and the session is recorded as rejected). `connector`: the phone connector the call came through, if any;
    `action_url`: ConversationRelay's `<Connect action>` (the handover webhook). No Twilio or model-provider calls.
    A new call costs one INSERT (that also stores the stream token's nonce) and the environment's webhook endpoints
    (plus one INSERT of the call.started events when some want it). A CallSid answered before gets the same
    session and the same kind of answer (`Admitted.retry`); one routed on from another connector is re-admitted.
    """
    call_sid = (call_sid or "").strip()[:64]
    if not call_sid:
        return Admitted(None, apology_twiml())
    interesting = {k: v for k, v in params.items() if k in PARAMS_OF_INTEREST and v != ""}
    values = {
        "workspace_id": workspace_id, "connector": connector,
        "agent_version": None if problem else version, "environment_id": environment_id,
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
        if session.connector_id == (connector.pk if connector is not None else None):
            return Admitted(session, _answer_again(session=session, action_url=action_url), retry=True)
        # The same call routed on to another connector (e.g. an IVR in front of several agents).
        values["params"] = {**session.params, **interesting}
        for key, value in values.items():
            setattr(session, key, value)
        session.save(update_fields=[k.removesuffix("_id") for k in values])
    if problem:
        logger.warning("call rejected", extra={"call_sid": call_sid, "reason": problem})
        return Admitted(session, apology_twiml())
    token = _sign(session.pk, session.stream_token_nonce, at=session.started_at.timestamp())
    return Admitted(session, stream_twiml(version=version, token=token, action_url=action_url))
