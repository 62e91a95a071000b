"""Warm transfers: the caller holds in a conference while a person is rung, briefed, and takes the call (or not).

Everything goes through Twilio Conference, via the one gateway:

1. `warm_transfer_start` (from the live-call engine, in a thread): the caller's call is redirected (`call_update`)
   to `<Say>please hold</Say><Dial action=transfer-result><Conference startConferenceOnEnter=false
   endConferenceOnExit=true>callwell-transfer-ID</Conference></Dial>`: the caller hears Twilio's hold music. The
   agent's stream ends with that redirect. Then the first destination is dialled into the same conference
   (`conference_participant_create`, answering-machine detection on that leg, its status callbacks to
   `transfer-status`, AMD to `transfer-amd`).
2. `transfer-amd`: a person (`AnsweredBy=human`/`unknown`) has their leg redirected (`call_update`) to the brief:
   `<Gather numDigits=1 action=transfer-answer>` with a `<Say>` built by `brief_text` (who called, why, what was
   done, from the transcript so far and the analysis fields); a machine is hung up and counts as not answered.
3. `transfer-answer`: 1 = taken: the person's leg joins the conference with `startConferenceOnEnter=true`, so the
   caller and the person talk (the agent is already gone); anything else = declined.
4. Declined / busy / no answer / failed / machine (`transfer-status`, `transfer-amd`, `transfer-answer`): the
   caller is told so (a `<Say>` before re-entering the hold), and the next destination is rung; when there is none,
   the agent comes back to the caller (a new stream of the same session, `admission.stream_twiml`) saying nobody
   could take the call and offering to take a message; a transcript line and the `handover.completed` event record
   it (`outcome=not-taken`).

Each destination is an entry of `CallHandover.attempts` ({destination, call_sid, outcome, at}); every change
emits `handover.attempted` (the attempt) and, once, `handover.completed`. Callbacks are idempotent: an attempt
that already has a final outcome changes nothing.
"""
from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from calls.engine.context import CallContext, HandoverActionSpec
from calls.models import CallHandover
from telephony import errors, twilio_gateway
from telephony.public_urls import absolute_url
from webhooks import services as webhook_services
from webhooks.models import EventType

logger = logging.getLogger(__name__)

Attempt = CallHandover.AttemptOutcome
FINAL = {Attempt.TAKEN, Attempt.DECLINED, Attempt.BUSY, Attempt.NO_ANSWER, Attempt.MACHINE, Attempt.FAILED}
RING_TIMEOUT = 20
GATHER_TIMEOUT = 8
HOLD_MESSAGE = "Please hold while I connect you."
NEXT_MESSAGE = "They could not take your call. I am trying someone else, please hold."
NOBODY_MESSAGE = "Sorry, nobody could take your call right now. I can take a message for them."
TAKEN_MESSAGE = "Connecting you now."
DECLINED_MESSAGE = "All right, the caller stays with the assistant. Goodbye."
CALL_STATUS_OUTCOMES = {"busy": Attempt.BUSY, "no-answer": Attempt.NO_ANSWER, "failed": Attempt.FAILED,
                        "canceled": Attempt.FAILED}
HUMAN_ANSWERS = {"human", "unknown"}
BRIEF_TURNS = 3  # caller turns quoted in the brief


def conference_name(handover_id: int) -> str:
    return f"callwell-transfer-{handover_id}"


def _url(base: str, name: str, handover_id: int, attempt: int | None = None) -> str:
    """A callback URL under the call's base (`handovers.callback_base`: the connector's or the call session's)."""
    query = f"?handover={handover_id}" + (f"&attempt={attempt}" if attempt is not None else "")
    return absolute_url(f"{base}/{name}{query}")


def _base(session) -> str:
    from calls.services.handovers import session_callback_base

    return session_callback_base(session)


def twilio_say_voice(voice: str) -> str:
    """The version's voice when Twilio's `<Say>` speaks it (Amazon Polly, Google, the classic three); else ""
    (other engines' voices: `<Say>` falls back to its default voice)."""
    voice = voice or ""
    return voice if voice.startswith(("Polly.", "Google.")) or voice in ("alice", "man", "woman") else ""


def _say(node, text: str, language: str = "", voice: str = "") -> None:
    attributes = {}
    if language:
        attributes["language"] = language
    if twilio_say_voice(voice):
        attributes["voice"] = twilio_say_voice(voice)
    node.say(text, **attributes)


# ---------------------------------------------------------------------------
# TwiML


def hold_twiml(*, handover_id: int, base: str, say: str = HOLD_MESSAGE, language: str = "") -> str:
    """The caller's side: a message, then the conference (hold music until the person joins)."""
    response = VoiceResponse()
    if say:
        _say(response, say, language)
    dial = Dial(action=_url(base, "transfer-result", handover_id), method="POST")
    dial.conference(conference_name(handover_id), start_conference_on_enter=False, end_conference_on_exit=True,
                    beep=False)
    response.append(dial)
    return str(response)


def brief_prompt(brief: str) -> str:
    return f"{brief} Press 1 to take the call, or 2 to decline."


def brief_twiml(*, handover_id: int, attempt: int, base: str, brief: str, language: str = "", audio_url: str = "",
                voice: str = "") -> str:
    """The person's side once they answered: the brief, then 1 to take the call or 2 to decline. `audio_url`: the
    brief rendered in the agent's own voice (`<Play>`); without it, `<Say>` (in the version's voice when Twilio
    speaks it)."""
    response = VoiceResponse()
    gather = Gather(num_digits=1, timeout=GATHER_TIMEOUT, action_on_empty_result=True, method="POST",
                    action=_url(base, "transfer-answer", handover_id, attempt))
    if audio_url:
        gather.play(audio_url)
    else:
        _say(gather, brief_prompt(brief), language, voice)
    response.append(gather)
    return str(response)


def join_twiml(*, handover_id: int, language: str = "") -> str:
    response = VoiceResponse()
    _say(response, TAKEN_MESSAGE, language)
    dial = Dial()
    dial.conference(conference_name(handover_id), start_conference_on_enter=True, end_conference_on_exit=True,
                    beep=False)
    response.append(dial)
    return str(response)


def _goodbye_twiml(text: str = DECLINED_MESSAGE, language: str = "") -> str:
    response = VoiceResponse()
    _say(response, text, language)
    response.hangup()
    return str(response)


# ---------------------------------------------------------------------------
# The brief


def brief_text(*, call_session_id: int) -> str:
    """Who called, why, what was done: from the transcript so far, the API actions run and the analysis fields.

    Deterministic (no model): it is spoken to the person who may take the call."""
    from calls.models import CallActionRun, CallAnalysis, CallSession, CallTurn

    session = CallSession.objects.select_related("agent_version__agent").get(pk=call_session_id)
    who = _other_party(session) or "an unknown number"
    name = (session.variables or {}).get("caller_name") or (session.variables or {}).get("name")
    calling = "a call with" if session.direction == "outbound-api" else "a call from"
    parts = [f"You have {calling} {name} at {who}." if name else f"You have {calling} {who}."]
    if session.agent_version_id:
        parts[0] = parts[0][:-1] + f", transferred by {session.agent_version.agent.name}."
    said = list(CallTurn.objects.filter(call_session_id=call_session_id, role=CallTurn.Role.CALLER)
                .exclude(text="").order_by("seq").values_list("text", flat=True)[:BRIEF_TURNS])
    if said:
        parts.append("The caller said: " + " ... ".join(t.strip().rstrip(".") for t in said) + ".")
    runs = list(CallActionRun.objects.filter(call_session_id=call_session_id).order_by("started_at")
                .values_list("name", "ok"))
    if runs:
        done = ", ".join(f"{n.replace('_', ' ')}{'' if ok else ' (failed)'}" for n, ok in runs)
        parts.append(f"The assistant ran: {done}.")
    analysis = CallAnalysis.objects.filter(call_session_id=call_session_id).values_list("fields", flat=True).first()
    if analysis:
        facts = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in analysis.items() if v not in ("", None, []))
        if facts:
            parts.append(f"Noted so far: {facts}.")
    return " ".join(parts)


# ---------------------------------------------------------------------------
# The brief in the agent's own voice


BRIEF_AUDIO_SALT = "callwell.brief-audio"
AUDIO_URL_SECONDS = 600  # Twilio fetches it right after the redirect; the link is useless after this
TTS_TIMEOUT = 10.0  # seconds for the whole brief; beyond that, <Say>


def tts_stage_for(session):
    """The version's text-to-speech stage (calls.providers.speech): a cascaded version's vendor, voice and model;
    a scripted version over Media Streams speaks with the offline stage (espeak-ng). None: the version has no
    speech stage of ours (ConversationRelay and speech-to-speech versions are voiced by Twilio / the model).
    Raises the stage's config error (a missing key)."""
    from calls.engine.context import context_for_call_session
    from calls.providers.speech import registry

    version = session.agent_version
    if version is None:
        return None
    if version.provider == "cascaded":
        vendor, model = version.tts_vendor, version.tts_model
    elif version.provider == "scripted" and version.transport == "media_streams":
        vendor, model = "offline", ""
    else:
        return None
    return registry.text_to_speech(context_for_call_session(session), vendor, voice=version.voice, model=model)


def _synthesize(stage, text: str) -> bytes:
    """Blocking: the stage's PCM16 for `text`, run on its own event loop in a worker thread (the caller may be a
    request thread or, in tests, a thread with a loop of its own)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    async def collect() -> bytes:
        chunks = []
        try:
            async for pcm in stage.synthesize(text):
                chunks.append(pcm)
        finally:
            await stage.close()
        return b"".join(chunks)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="brief-tts") as pool:
        return pool.submit(asyncio.run, asyncio.wait_for(collect(), TTS_TIMEOUT)).result()


def _wav(pcm: bytes, rate: int) -> bytes:
    import io
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return out.getvalue()


def brief_audio_render(*, session, text: str):
    """The brief spoken by the version's text-to-speech stage, stored as a `CallAudio` (WAV); None when the version
    has no stage or it failed (the caller then uses `<Say>`). Never raises."""
    from calls.models import CallAudio

    try:
        stage = tts_stage_for(session)
        if stage is None:
            return None
        pcm = _synthesize(stage, text)
    except Exception as exc:  # noqa: BLE001 - a missing key, a vendor error, a timeout: <Say> instead
        logger.warning("warm transfer: the brief could not be spoken in the agent's voice; <Say> instead",
                       extra={"call_session_id": session.pk, "error": type(exc).__name__})
        return None
    if not pcm:
        return None
    version = session.agent_version
    return CallAudio.objects.create(call_session=session, kind=CallAudio.Kind.BRIEF, text=text,
                                    audio=_wav(pcm, stage.sample_rate),
                                    voice=f"{stage.name} {version.voice or ''}".strip()[:120])


def audio_url(audio) -> str:
    from django.core import signing

    return absolute_url(f"/v1/audio/brief/{signing.dumps({'a': audio.pk}, salt=BRIEF_AUDIO_SALT)}")


def audio_for_token(token: str):
    """The `CallAudio` a signed token names while it is fresh (AUDIO_URL_SECONDS), else None."""
    from django.core import signing

    from calls.models import CallAudio

    try:
        data = signing.loads(token, salt=BRIEF_AUDIO_SALT, max_age=AUDIO_URL_SECONDS)
    except signing.BadSignature:
        return None
    return CallAudio.objects.filter(pk=data.get("a")).first() if isinstance(data, dict) else None


def brief_twiml_spoken(*, session_id: int, handover_id: int, attempt: int, brief: str) -> str:
    """The brief's TwiML with the brief in the agent's own voice (`<Play>`), or `<Say>` in the version's voice
    when its speech stage cannot speak it."""
    from calls.models import CallSession

    session = (CallSession.objects.select_related("agent_version__agent", "connector", "environment")
               .get(pk=session_id))
    version = session.agent_version
    language = version.language if version is not None else ""
    audio = brief_audio_render(session=session, text=brief_prompt(brief))
    return brief_twiml(handover_id=handover_id, attempt=attempt, base=_base(session), brief=brief, language=language,
                       audio_url=audio_url(audio) if audio is not None else "",
                       voice=version.voice if version is not None else "")


# ---------------------------------------------------------------------------
# Recording


def _emit(handover: CallHandover, type: str, attempt: dict | None = None) -> None:
    session = handover.call_session
    data = webhook_services.handover_data(handover)
    if attempt is not None:
        data["attempt"] = dict(attempt)
    webhook_services.call_event_record(session=session, type=type, handover=data)


def _locked(handover_id: int) -> CallHandover | None:
    return (CallHandover.objects.select_for_update(of=("self",))
            .select_related("call_session", "call_session__agent_version", "call_session__connector",
                            "call_session__environment")
            .filter(pk=handover_id).first())


@transaction.atomic
def warm_handover_record(*, call_session_id: int, action: HandoverActionSpec, transport: str) -> CallHandover:
    """The handover row with one attempt per destination (all waiting); `handover.started` with the kind."""
    handover = CallHandover.objects.create(
        call_session_id=call_session_id, action_name=action.name, destination=action.destination,
        transport=transport, kind="warm",
        attempts=[{"destination": d, "call_sid": "", "outcome": "", "at": None} for d in action.destinations])
    handover = CallHandover.objects.select_related("call_session__agent_version").get(pk=handover.pk)
    _emit(handover, EventType.HANDOVER_STARTED)
    return handover


def _attempt_set(handover: CallHandover, index: int, outcome: str, **fields) -> dict:
    attempt = handover.attempts[index]
    attempt.update(outcome=outcome, at=timezone.now().isoformat(), **fields)
    handover.save(update_fields=["attempts"])
    _emit(handover, EventType.HANDOVER_ATTEMPTED, attempt)
    return attempt


def _transcript_line(handover: CallHandover, text: str) -> None:
    from calls.services.handovers import transcript_save

    transcript_save(call_session_id=handover.call_session_id, turns=[("event", text, True)])


def _finish(handover: CallHandover, outcome: str, detail: str = "") -> None:
    handover.outcome = outcome
    handover.outcome_at = timezone.now()
    handover.detail = detail[:255]
    handover.save(update_fields=["outcome", "outcome_at", "detail"])
    _emit(handover, EventType.HANDOVER_COMPLETED)


# ---------------------------------------------------------------------------
# Gateway side (blocking)


def _creds_for(handover: CallHandover):
    from telephony.selectors import connection_get

    connection = connection_get(workspace=handover.call_session.workspace_id)
    return connection.credentials() if connection is not None and connection.has_credentials else None


def _our_number(session) -> str:
    """The workspace's number on this call: the one called (inbound) or the one calling (placed by the agent)."""
    return session.from_number if session.direction == "outbound-api" else session.to_number


def _other_party(session) -> str:
    return session.to_number if session.direction == "outbound-api" else session.from_number


def _dial(*, creds, handover: CallHandover, index: int) -> bool:
    """Ring destination `index` into the conference. False when Twilio refused (the attempt is then failed)."""
    session = handover.call_session
    base = _base(session)
    destination = handover.attempts[index]["destination"]
    try:
        participant = twilio_gateway.conference_participant_create(
            creds=creds, conference=conference_name(handover.pk), from_=_our_number(session), to=destination,
            label=f"transfer-{index}", timeout=RING_TIMEOUT, start_conference_on_enter=False,
            end_conference_on_exit=False,
            status_callback=_url(base, "transfer-status", handover.pk, index),
            amd_status_callback=_url(base, "transfer-amd", handover.pk, index))
    except errors.TwilioError as exc:
        logger.warning("warm transfer: could not dial a destination",
                       extra={"handover_id": handover.pk, "attempt": index, "code": exc.code})
        _attempt_set(handover, index, Attempt.FAILED, detail=f"twilio {exc.code or exc.status}")
        return False
    _attempt_set(handover, index, "dialling", call_sid=participant.call_sid)
    logger.info("warm transfer: dialling", extra={"handover_id": handover.pk, "attempt": index})
    return True


def _redirect_caller(*, creds, handover: CallHandover, twiml: str) -> bool:
    from calls.services.handovers import call_is_gone

    try:
        twilio_gateway.call_update(creds=creds, call_sid=handover.call_session.call_sid, twiml=twiml)
    except errors.TwilioError as exc:
        if not call_is_gone(exc):
            logger.warning("warm transfer: could not redirect the caller",
                           extra={"handover_id": handover.pk, "code": exc.code})
        return False
    return True


def _hang_up_leg(*, creds, call_sid: str) -> None:
    if not call_sid:
        return
    try:
        twilio_gateway.call_update(creds=creds, call_sid=call_sid, status="completed")
    except errors.TwilioError:
        pass  # already gone


def hold_message(handover: CallHandover) -> str:
    """What the caller hears before the hold: the action's own hold message (versioned with it), else the default."""
    from agents.models import HandoverAction

    session = handover.call_session
    own = (HandoverAction.objects.filter(version_id=session.agent_version_id, name=handover.action_name)
           .values_list("hold_message", flat=True).first() if session.agent_version_id else "")
    return (own or "").strip() or HOLD_MESSAGE


def warm_transfer_start(*, ctx: CallContext, handover_id: int) -> str:
    """Blocking. Put the caller on hold in the conference and ring the first destination.

    Returns the handover's outcome so far: pending, caller-gone or not-redirected (as `redirect_to_dial`)."""
    from calls.services.handovers import call_is_gone, context_callback_base

    handover = CallHandover.objects.select_related("call_session").get(pk=handover_id)
    twiml = hold_twiml(handover_id=handover_id, base=context_callback_base(ctx), say=hold_message(handover),
                       language=ctx.language)
    try:
        twilio_gateway.call_update(creds=ctx.creds, call_sid=ctx.call_sid, twiml=twiml)
    except errors.TwilioError as exc:
        return CallHandover.Outcome.CALLER_GONE if call_is_gone(exc) else CallHandover.Outcome.NOT_REDIRECTED
    _advance(creds=ctx.creds, handover_id=handover_id, start=0, announce=False)
    return CallHandover.Outcome.PENDING


def relay_hold_twiml(*, handover: CallHandover) -> str:
    """ConversationRelay: the `<Connect action>` answer for a warm handover (the caller holds), and the first
    destination rung once that answer is committed. A retried callback (a destination already tried) only holds."""
    language = handover.call_session.agent_version.language if handover.call_session.agent_version_id else ""
    if handover.outcome == CallHandover.Outcome.PENDING and not any(a["outcome"] for a in handover.attempts):
        creds = _creds_for(handover)
        transaction.on_commit(lambda: _advance(creds=creds, handover_id=handover.pk, start=0, announce=False))
    return hold_twiml(handover_id=handover.pk, base=_base(handover.call_session), say=hold_message(handover),
                      language=language)


def _advance(*, creds, handover_id: int, start: int, announce: bool = True) -> None:
    """Ring the first destination from `start` on that Twilio accepts; none left: the agent takes the caller back."""
    with transaction.atomic():
        handover = _locked(handover_id)
        if handover is None or handover.outcome != CallHandover.Outcome.PENDING:
            return
        language = handover.call_session.agent_version.language if handover.call_session.agent_version_id else ""
        base = _base(handover.call_session)
        for index in range(start, len(handover.attempts)):
            if handover.attempts[index]["outcome"]:
                continue
            if announce:  # the caller hears why the hold goes on
                _redirect_caller(creds=creds, handover=handover, twiml=hold_twiml(
                    handover_id=handover.pk, base=base, say=NEXT_MESSAGE, language=language))
                announce = False
            if _dial(creds=creds, handover=handover, index=index):
                return
        _back_to_agent(creds=creds, handover=handover, language=language)


def _back_to_agent(*, creds, handover: CallHandover, language: str) -> None:
    """Nobody took the call: the agent comes back (new stream of the session) and offers to take a message."""
    from calls.services.admission import stream_token_issue, stream_twiml
    from calls.services.handovers import relay_action_url

    tried = ", ".join(f"{a['destination']} {a['outcome']}" for a in handover.attempts)
    _transcript_line(handover, f"Warm transfer {handover.action_name}: nobody took the call ({tried}); "
                               f"the agent offers to take a message")
    session = handover.call_session
    handover.fallback = "agent"
    handover.save(update_fields=["fallback"])
    _finish(handover, CallHandover.Outcome.NOT_TAKEN, detail=tried)
    if session.agent_version_id:
        token = stream_token_issue(call_session=session)
        twiml = stream_twiml(version=session.agent_version, token=token, action_url=relay_action_url(session),
                             say=NOBODY_MESSAGE, language=language)
    else:
        twiml = _goodbye_twiml(NOBODY_MESSAGE, language)
    transaction.on_commit(lambda: _redirect_caller(creds=creds, handover=handover, twiml=twiml))


# ---------------------------------------------------------------------------
# Callbacks Twilio makes (views in connectors/webhooks.py)


def _handover_for(connector, call_session, handover_id, attempt) -> tuple[int, int] | None:
    """(handover id, attempt) of a warm handover of the connector's calls, or of `call_session` (a call an agent
    placed); None for anything else."""
    from calls.services.handovers import owned_by

    try:
        handover_id, attempt = int(handover_id), int(attempt)
    except (TypeError, ValueError):
        return None
    if not CallHandover.objects.filter(pk=handover_id, kind="warm",
                                       **owned_by(connector=connector, call_session=call_session)).exists():
        return None
    return handover_id, attempt


def participant_status_record(*, connector=None, call_session=None, handover_id, attempt, params: dict) -> None:
    """The person's leg: ringing, or ended before anyone took it (busy / no answer / failed)."""
    ids = _handover_for(connector, call_session, handover_id, attempt)
    if ids is None:
        return
    handover_id, index = ids
    status = (params.get("CallStatus") or "").strip().lower()
    failed = CALL_STATUS_OUTCOMES.get(status)
    with transaction.atomic():
        handover = _locked(handover_id)
        if index >= len(handover.attempts) or handover.attempts[index]["outcome"] in FINAL:
            return
        if status == "ringing":
            _attempt_set(handover, index, Attempt.RINGING)
            return
        if status == "completed" and handover.attempts[index]["outcome"] != Attempt.BRIEFED:
            failed = Attempt.NO_ANSWER  # hung up before hearing the brief
        elif status == "completed":
            failed = Attempt.DECLINED  # hung up during the brief
        if failed is None:
            return
        _attempt_set(handover, index, failed)
    _advance(creds=_creds_for(handover), handover_id=handover_id, start=index + 1)


def participant_amd_record(*, connector=None, call_session=None, handover_id, attempt, params: dict) -> None:
    """Answering-machine detection on the person's leg: a person hears the brief; a machine is hung up."""
    ids = _handover_for(connector, call_session, handover_id, attempt)
    if ids is None:
        return
    handover_id, index = ids
    answered_by = (params.get("AnsweredBy") or "").strip().lower()
    call_sid = params.get("CallSid") or ""
    with transaction.atomic():
        handover = _locked(handover_id)
        if index >= len(handover.attempts) or handover.attempts[index]["outcome"] in FINAL | {Attempt.BRIEFED}:
            return
        creds = _creds_for(handover)
        session = handover.call_session
        if answered_by in HUMAN_ANSWERS:
            brief = brief_text(call_session_id=session.pk)
            _attempt_set(handover, index, Attempt.BRIEFED, call_sid=call_sid or handover.attempts[index]["call_sid"])
            # Rendered in the agent's voice after the commit (no row lock held while the voice speaks).
            transaction.on_commit(lambda: _brief(creds=creds, call_sid=call_sid, brief=brief, session_id=session.pk,
                                                 handover_id=handover_id, index=index))
            return
        _attempt_set(handover, index, Attempt.MACHINE, answered_by=answered_by[:32])
    _hang_up_leg(creds=creds, call_sid=call_sid)
    _advance(creds=creds, handover_id=handover_id, start=index + 1)


def _brief(*, creds, call_sid: str, brief: str, session_id: int, handover_id: int, index: int) -> None:
    twiml = brief_twiml_spoken(session_id=session_id, handover_id=handover_id, attempt=index, brief=brief)
    try:
        twilio_gateway.call_update(creds=creds, call_sid=call_sid, twiml=twiml)
    except errors.TwilioError:
        with transaction.atomic():
            handover = _locked(handover_id)
            if handover.attempts[index]["outcome"] in FINAL:
                return
            _attempt_set(handover, index, Attempt.FAILED)
        _advance(creds=creds, handover_id=handover_id, start=index + 1)


def answer_record(*, connector=None, call_session=None, handover_id, attempt, params: dict) -> str:
    """The brief's `<Gather>` result: 1 takes the call (the person joins the caller), anything else declines."""
    ids = _handover_for(connector, call_session, handover_id, attempt)
    if ids is None:
        return _goodbye_twiml("This call is no longer waiting.")
    handover_id, index = ids
    digits = (params.get("Digits") or "").strip()
    with transaction.atomic():
        handover = _locked(handover_id)
        session = handover.call_session
        language = session.agent_version.language if session.agent_version_id else ""
        current = handover.attempts[index]["outcome"] if index < len(handover.attempts) else Attempt.FAILED
        if current == Attempt.TAKEN:  # a retried callback
            return join_twiml(handover_id=handover_id, language=language)
        if current in FINAL or handover.outcome != CallHandover.Outcome.PENDING:
            return _goodbye_twiml("This call is no longer waiting.", language)
        if digits == "1":
            attempt = _attempt_set(handover, index, Attempt.TAKEN)
            handover.destination = attempt["destination"]
            handover.dial_call_sid = (params.get("CallSid") or attempt.get("call_sid") or "")[:64]
            handover.save(update_fields=["destination", "dial_call_sid"])
            _transcript_line(handover, f"Warm transfer {handover.action_name}: {attempt['destination']} took the call")
            _finish(handover, CallHandover.Outcome.ANSWERED, detail=f"taken by {attempt['destination']}")
            return join_twiml(handover_id=handover_id, language=language)
        _attempt_set(handover, index, Attempt.DECLINED if digits else Attempt.NO_ANSWER)
        creds = _creds_for(handover)
    _advance(creds=creds, handover_id=handover_id, start=index + 1)
    return _goodbye_twiml(DECLINED_MESSAGE, language)


def caller_result_record(*, connector=None, call_session=None, handover_id, params: dict) -> str:
    """The caller's `<Dial><Conference>` ended: after a taken call, hang up; while still waiting, the caller left."""
    try:
        handover_id = int(handover_id)
    except (TypeError, ValueError):
        return _hangup_twiml()
    ringing = []
    with transaction.atomic():
        handover = _locked(handover_id)
        owner = (handover.call_session.connector_id == connector.pk if connector is not None
                 else handover.call_session_id == getattr(call_session, "pk", None)) if handover is not None else False
        if not owner:
            return _hangup_twiml()
        if handover.outcome == CallHandover.Outcome.PENDING:
            ringing = [a["call_sid"] for a in handover.attempts if a["outcome"] in ("dialling", Attempt.RINGING,
                                                                                   Attempt.BRIEFED)]
            _finish(handover, CallHandover.Outcome.CALLER_GONE, detail="the caller hung up while holding")
    if ringing:
        creds = _creds_for(handover)
        for call_sid in ringing:
            _hang_up_leg(creds=creds, call_sid=call_sid)
    return _hangup_twiml()


def _hangup_twiml() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response)


# ---------------------------------------------------------------------------
# Another agent: the call moves to another agent (its version and environment chosen on the action)


@transaction.atomic
def agent_handoff(*, call_session_id: int, action: HandoverActionSpec, transport: str) -> tuple[CallHandover, str | None]:
    """Move the call session to the action's agent (a published version: the number given, else its newest; the
    environment given, else the call's) and answer the `<Connect>` TwiML of its new stream. The session keeps its
    turns and variables; `metadata["handoffs"]` says who had it, so the new agent's context carries the
    conversation so far (calls.engine.context). (handover, None) when that agent cannot take calls."""
    from agents.models import Agent, AgentVersion, Environment
    from calls.models import CallSession
    from calls.services.admission import stream_token_issue, stream_twiml
    from calls.services.handovers import relay_action_url, transcript_save

    session = (CallSession.objects.select_for_update(of=("self",))
               .select_related("agent_version__agent", "connector", "environment").get(pk=call_session_id))
    agent_id, number, environment_id = (tuple(action.target) + (None, None, None))[:3]
    target = Agent.objects.filter(pk=agent_id, workspace_id=session.workspace_id).select_related(
        "latest_version").first()
    version = None
    if target is not None:
        version = (AgentVersion.objects.filter(agent=target, state=AgentVersion.State.PUBLISHED, number=number).first()
                   if number else target.latest_version)
    environment = (Environment.objects.filter(pk=environment_id, workspace_id=session.workspace_id).first()
                   if environment_id else session.environment)
    label = f"{target.name} v{version.number}" if target is not None and version is not None else (
        f"{target.name} (no published version)" if target is not None else "an agent that no longer exists")
    handover = CallHandover.objects.create(call_session=session, action_name=action.name, destination="",
                                           transport=transport, kind="agent",
                                           attempts=[{"destination": f"agent {label}"[:80], "call_sid": "",
                                                      "outcome": "", "at": None}])
    handover = CallHandover.objects.select_related("call_session__agent_version").get(pk=handover.pk)
    _emit(handover, EventType.HANDOVER_STARTED)
    if version is None:
        handover.attempts[0].update(outcome=Attempt.FAILED, at=timezone.now().isoformat())
        handover.save(update_fields=["attempts"])
        _finish(handover, CallHandover.Outcome.FAILED, detail=f"{label}: cannot take calls")
        return handover, None
    previous = session.agent_version
    metadata = dict(session.metadata or {}) if isinstance(session.metadata, dict) else {}
    metadata["handoffs"] = [*(metadata.get("handoffs") or []), {
        "handover_id": handover.pk, "at": timezone.now().isoformat(),
        "from_version": previous.pk if previous else None,
        "from_agent": f"{previous.agent.name} v{previous.number or 'draft'}" if previous else "",
        "to_version": version.pk, "to_agent": label,
        "environment": environment.pk if environment else None}]
    session.agent_version, session.environment, session.metadata = version, environment, metadata
    session.save(update_fields=["agent_version", "environment", "metadata"])
    token = stream_token_issue(call_session=session)
    twiml = stream_twiml(version=version, token=token, action_url=relay_action_url(session))
    transcript_save(call_session_id=session.pk, turns=[("event", f"Handed over to {label} ({action.name})", True)])
    handover.attempts[0].update(outcome=Attempt.TAKEN, at=timezone.now().isoformat())
    handover.answer_twiml = twiml
    handover.save(update_fields=["attempts", "answer_twiml"])
    _finish(handover, CallHandover.Outcome.ANSWERED, detail=f"to {label}")
    return handover, twiml


def caller_redirect(*, ctx: CallContext, twiml: str) -> str:
    """Blocking. The live call to `twiml` (Media Streams); the outcome as `redirect_to_dial`'s."""
    from calls.services.handovers import call_is_gone

    try:
        twilio_gateway.call_update(creds=ctx.creds, call_sid=ctx.call_sid, twiml=twiml)
    except errors.TwilioError as exc:
        return CallHandover.Outcome.CALLER_GONE if call_is_gone(exc) else CallHandover.Outcome.NOT_REDIRECTED
    return CallHandover.Outcome.PENDING
