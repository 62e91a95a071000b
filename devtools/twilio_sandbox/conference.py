"""Conferences in the sandbox: `<Dial><Conference>`, the Participants API, and a simulated person on a dialled leg.

State: `sandbox.state["conferences"][account_sid][CF…]` = {sid, friendly_name, status (init → in-progress →
completed), participants {CallSid: {label, hold, muted, coaching, start_conference_on_enter,
end_conference_on_exit, …}}, log [(event, CallSid, detail)]}. A conference is found by SID or by friendly name (the
newest one not completed; Twilio creates it on first use). It starts when a participant with
`startConferenceOnEnter` joins (everyone then hears everyone) and ends when a participant with
`endConferenceOnExit` leaves (the others leave too: a caller's `<Dial>` then requests its `action`).

A call in a conference that the app redirects (`Calls/<sid>.json Twiml=`) or completes leaves it at once
(`call_redirected`, called by the call-update route), as with Twilio.

`POST …/Conferences/{sid or name}/Participants.json` dials `To` (`TransferredPerson`). Who answers is told by the
number, as in outbound.py:

| `To` ends in | what happens | status callbacks | AMD (`AmdStatusCallback`) |
| --- | --- | --- | --- |
| `77` / `88` / `99` | busy / no answer / failed | initiated, ringing, busy / no-answer; initiated, failed | — |
| `66` | an answering machine: joins, waits to be hung up | …, in-progress, completed | `machine_start` |
| `11` | a person who declines: hears the brief, presses 2 | …, in-progress, completed | `human` |
| `22` | a person who says nothing to the brief | …, in-progress, completed | `human` |
| anything else | a person who accepts: hears the brief, presses 1, talks, hangs up | …, completed | `human` |
| `client:<identity>` | the registered browser rings (signalling.py `BrowserParticipant`): answer joins, reject is busy | initiated, ringing, in-progress, completed / busy / no-answer | — |

The person's words are the `<Say>` they heard (`events` "say"); `sandbox.transfer_talk_seconds` is how long an
accepting person stays in the started conference before hanging up.

Audio (the dialer's coaching): a leg with media — a browser (signalling.py) or a sandbox person whose `<Dial>` leg
the app redirected into a conference (`PersonInConference`), or an inbound call's `<Dial><Client>` leg redirected
there (signalling.py `BrowserLegInConference`; the caller's `<Dial>` ends and its action joins the caller) — is mixed with the others, respecting muted, hold and
coaching (`ConferenceAudio`, at the bottom); `<Conference statusCallback>` gets participant-join / -leave / -mute /
-unmute / -modify and conference-start / -end.
"""
from __future__ import annotations

import secrets
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from devtools.twilio_sandbox.phone import MAX_CALL_SECONDS, SimulatedCall

POLL = 0.02
TALK_SECONDS = 0.3


def behaviour_of(to: str) -> str:
    digits = "".join(ch for ch in to if ch.isdigit())
    return {"77": "busy", "88": "no-answer", "99": "failed", "66": "machine", "11": "decline",
            "22": "silent"}.get(digits[-2:], "accept")


def _bool(value, default: bool) -> bool:
    if value is None or value == "":
        return default
    return str(value).lower() in ("true", "1", "yes")


def _now():
    from devtools.twilio_sandbox.server import _now

    return _now()


# ---------------------------------------------------------------------------
# State


def find_or_create(sandbox, account_sid: str, sid_or_name: str, *, create: bool = True) -> dict | None:
    """The conference by SID, or the live one with this friendly name (created when `create`). Under the lock."""
    items = sandbox.state["conferences"][account_sid]
    if sid_or_name in items:
        return items[sid_or_name]
    live = [c for c in items.values() if c["friendly_name"] == sid_or_name and c["status"] != "completed"]
    if live:
        return live[-1]
    if not create:
        return None
    now = _now()
    sid = "CF" + secrets.token_hex(16)
    items[sid] = {"sid": sid, "account_sid": account_sid, "friendly_name": sid_or_name, "status": "init",
                  "date_created": now, "date_updated": now, "region": "us1", "api_version": "2010-04-01",
                  "reason_conference_ended": None, "call_sid_ending_conference": None,
                  "participants": {}, "log": []}
    return items[sid]


def _join(sandbox, conf: dict, call_sid: str, attrs: dict) -> None:
    with sandbox.lock:
        now = _now()
        conf["participants"][call_sid] = {
            "call_sid": call_sid, "conference_sid": conf["sid"], "account_sid": conf["account_sid"],
            "label": attrs.get("label"), "hold": False, "muted": _bool(attrs.get("muted"), False),
            "coaching": _bool(attrs.get("coaching"), False), "call_sid_to_coach": attrs.get("call_sid_to_coach"),
            "start_conference_on_enter": _bool(attrs.get("start_conference_on_enter"), True),
            "end_conference_on_exit": _bool(attrs.get("end_conference_on_exit"), False),
            "status": "connected", "date_created": now, "date_updated": now, "queue_time": "0",
        }
        conf["log"].append(("join", call_sid, attrs.get("label") or ""))
        if attrs.get("status_callback") and not conf.get("status_callback"):
            events = (attrs.get("status_callback_event") or "").split()
            conf["status_callback"] = (attrs["status_callback"], events)
        _participant_callback(sandbox, conf, call_sid, "participant-join")
        if conf["status"] == "init" and conf["participants"][call_sid]["start_conference_on_enter"]:
            conf["status"] = "in-progress"
            conf["log"].append(("start", call_sid, sorted(conf["participants"])))
            _participant_callback(sandbox, conf, call_sid, "conference-start")


def leave(sandbox, account_sid: str, call_sid: str, reason: str = "left") -> None:
    """The call leaves every conference it is in (ending those it ends on exit). Under or outside the lock."""
    with sandbox.lock:
        for conf in sandbox.state["conferences"].get(account_sid, {}).values():
            participant = conf["participants"].get(call_sid)
            if participant is None:
                continue
            _participant_callback(sandbox, conf, call_sid, "participant-leave")
            conf["participants"].pop(call_sid, None)
            audio = sandbox.__dict__.get("conference_audio", {}).get(conf["sid"])
            if audio is not None:
                audio.endpoints.pop(call_sid, None)
            conf["log"].append(("leave", call_sid, reason))
            if participant["end_conference_on_exit"] and conf["status"] != "completed":
                conf.update(status="completed", date_updated=_now(), call_sid_ending_conference=call_sid,
                            reason_conference_ended="participant-with-end-conference-on-exit-left")
                conf["log"].append(("end", call_sid, sorted(conf["participants"])))
                _participant_callback(sandbox, conf, call_sid, "conference-end")
                conf["participants"].clear()


def call_redirected(sandbox, account_sid: str, call_sid: str) -> None:
    """The app redirected or completed a call (REST): it leaves its conference now."""
    leave(sandbox, account_sid, call_sid, reason="redirected")


def in_conference(sandbox, account_sid: str, conference_sid: str, call_sid: str) -> bool:
    with sandbox.lock:
        conf = sandbox.state["conferences"][account_sid].get(conference_sid)
        return bool(conf and call_sid in conf["participants"])


def participant_json(p: dict) -> dict:
    return {"account_sid": p["account_sid"], "call_sid": p["call_sid"], "conference_sid": p["conference_sid"],
            "label": p["label"], "call_sid_to_coach": p["call_sid_to_coach"], "coaching": p["coaching"],
            "date_created": p["date_created"], "date_updated": p["date_updated"],
            "end_conference_on_exit": p["end_conference_on_exit"], "muted": p["muted"], "hold": p["hold"],
            "start_conference_on_enter": p["start_conference_on_enter"], "status": p["status"],
            "queue_time": p["queue_time"],
            "uri": f"/2010-04-01/Accounts/{p['account_sid']}/Conferences/{p['conference_sid']}/Participants/"
                   f"{p['call_sid']}.json"}


def conference_json(c: dict) -> dict:
    base = f"/2010-04-01/Accounts/{c['account_sid']}/Conferences/{c['sid']}"
    return {"account_sid": c["account_sid"], "sid": c["sid"], "friendly_name": c["friendly_name"],
            "status": c["status"], "date_created": c["date_created"], "date_updated": c["date_updated"],
            "region": c["region"], "api_version": c["api_version"],
            "reason_conference_ended": c["reason_conference_ended"],
            "call_sid_ending_conference": c["call_sid_ending_conference"], "uri": f"{base}.json",
            "subresource_uris": {"participants": f"{base}/Participants.json", "recordings": f"{base}/Recordings.json"}}


# ---------------------------------------------------------------------------
# <Dial><Conference> (a call the sandbox runs: phone.SimulatedCall._dial delegates here)


def join(call: SimulatedCall, verb) -> str | None:
    """The call joins the conference named in `<Dial><Conference>` and stays until it ends or the app redirects the
    call; then the `<Dial action>` is requested (a redirect's TwiML is followed instead)."""
    noun = verb.find("Conference")
    name = (noun.text or "").strip()
    history_before = call._twiml_history_length()
    with call.sandbox.lock:
        conf = find_or_create(call.sandbox, call.account_sid, name)
    attrs = {"start_conference_on_enter": noun.get("startConferenceOnEnter"),
             "end_conference_on_exit": noun.get("endConferenceOnExit"), "muted": noun.get("muted"),
             "coaching": noun.get("coach") and "true", "call_sid_to_coach": noun.get("coach"),
             "label": noun.get("participantLabel"), "status_callback": noun.get("statusCallback"),
             "status_callback_event": noun.get("statusCallbackEvent")}
    answer = getattr(call, "_answer_browser", None)  # a browser leg: Twilio answers it to join
    if answer is not None:
        answer()
    _join(call.sandbox, conf, call.call_sid, attrs)
    media = getattr(call, "conference_media", None)  # a leg with audio: it hears and is heard (coaching rules)
    if media is not None:
        audio_of(call.sandbox, call.account_sid, conf["sid"]).attach(call.call_sid, media())
    gone = getattr(call, "browser_gone", None)
    call._log("conference", name=name, conference_sid=conf["sid"], status=conf["status"],
              wait_url=noun.get("waitUrl", ""))
    if conf["status"] == "init":
        call._log("hold", music=noun.get("waitUrl") or "twilio-default")
    started_logged = conf["status"] == "in-progress"
    while not call._out_of_time():
        if gone is not None and gone.is_set():  # the browser hung up
            call._log("browser_left_conference", name=name)
            break
        redirected = call._redirected_twiml(history_before)
        if redirected is not None:
            leave(call.sandbox, call.account_sid, call.call_sid, reason="redirected")
            call._log("redirected", twiml=redirected[:2000])
            return redirected
        with call.sandbox.lock:
            status = conf["status"]
            present = call.call_sid in conf["participants"]
            others = sorted(set(conf["participants"]) - {call.call_sid})
        if status == "in-progress" and not started_logged:
            call._log("conference_started", with_=others)
            started_logged = True
        if status == "completed" or not present:
            redirected = call._redirected_twiml(history_before)  # a redirect takes it out of the conference too
            if redirected is not None:
                call._log("redirected", twiml=redirected[:2000])
                return redirected
            break
        time.sleep(POLL)
    leave(call.sandbox, call.account_sid, call.call_sid)
    call._log("conference_ended", name=name)
    action = verb.get("action")
    if not action or call.status != "in-progress":
        return None
    return call._request(action, verb.get("method", "POST"), {"DialCallStatus": "completed",
                                                              "ConferenceSid": conf["sid"]})


# ---------------------------------------------------------------------------
# A participant the app dials (Participants API)


@dataclass
class TransferredPerson(SimulatedCall):
    """The person (or machine) on a leg dialled into a conference: status callbacks, AMD, the brief's `<Gather>`."""

    form: dict = field(default_factory=dict)
    conference_sid: str = ""
    behaviour: str = "accept"
    talk_seconds: float = TALK_SECONDS

    def _params(self, extra: dict) -> dict:
        return {**super()._params(extra), "Direction": "outbound-api", "ConferenceSid": self.conference_sid, **extra}

    def _progress(self, status: str) -> None:
        if self.status_callback and status != "completed":
            self._callback(self.status_callback[0], self.status_callback[1], {"CallStatus": status})

    def _run(self) -> None:
        form = self.form
        callback = form.get("StatusCallback")
        self.status_callback = (callback, form.get("StatusCallbackMethod") or "POST") if callback else None
        self._log("dialled", to=self.to, behaviour=self.behaviour, conference_sid=self.conference_sid)
        self._progress("initiated")
        if self.behaviour == "failed":
            self._set_status("failed")
            return
        self._set_status("ringing")
        self._progress("ringing")
        self._log("ringing")
        if self.behaviour in ("busy", "no-answer"):
            self._set_status(self.behaviour)
            return
        history_before = self._twiml_history_length()
        self._set_status("in-progress")
        self._progress("in-progress")
        with self.sandbox.lock:
            conf = self.sandbox.state["conferences"][self.account_sid][self.conference_sid]
        _join(self.sandbox, conf, self.call_sid, {
            "start_conference_on_enter": form.get("StartConferenceOnEnter"),
            "end_conference_on_exit": form.get("EndConferenceOnExit"), "muted": form.get("Muted"),
            "label": form.get("Label"), "coaching": form.get("Coaching"),
            "call_sid_to_coach": form.get("CallSidToCoach")})
        self._amd("machine_start" if self.behaviour == "machine" else "human")
        # Wait for the app: a redirect (the brief), a hang-up, or the conference ending.
        while not self._out_of_time():
            twiml = self._redirected_twiml(history_before)
            if twiml is not None:
                leave(self.sandbox, self.account_sid, self.call_sid, reason="redirected")
                self._follow(twiml)
                return
            if not in_conference(self.sandbox, self.account_sid, self.conference_sid, self.call_sid):
                twiml = self._redirected_twiml(history_before)
                if twiml is not None:
                    self._follow(twiml)
                return
            time.sleep(POLL)

    def _amd(self, answered_by: str) -> None:
        url = self.form.get("AmdStatusCallback")
        if not url or not self.form.get("MachineDetection"):
            return
        with self.sandbox.lock:
            call = self.sandbox.state["calls"][self.account_sid].get(self.call_sid)
            if call is not None:
                call["answered_by"] = answered_by
        params = {"AccountSid": self.account_sid, "CallSid": self.call_sid, "AnsweredBy": answered_by,
                  "ConferenceSid": self.conference_sid, "MachineDetectionDuration": "1200"}
        self.sandbox._send_callback(url, params, self._token())
        self._log("amd", answered_by=answered_by)

    def _execute(self, twiml: str) -> str | None:
        """`<Gather>`: the person hears its `<Say>` / `<Play>` and presses 1 (accept), 2 (decline) or nothing (silent)."""
        try:
            root = ET.fromstring(twiml)
        except ET.ParseError:
            return super()._execute(twiml)
        gather = root.find("Gather")
        if gather is None:
            return super()._execute(twiml)
        self._log("twiml", twiml=twiml[:2000])
        for verb in gather:
            if verb.tag == "Say":
                self._log("say", text=(verb.text or "").strip())
            elif verb.tag == "Play":
                self._play(verb)
        digits = {"accept": "1", "decline": "2"}.get(self.behaviour, "")
        self._log("pressed", digits=digits)
        action = gather.get("action")
        if not action:
            return None
        if not digits and gather.get("actionOnEmptyResult") != "true":
            return None
        return self._request(action, gather.get("method", "POST"), {"Digits": digits} if digits else {})



def _talker(person: TransferredPerson) -> None:
    """An accepting person in a started conference talks a little, then hangs up (ending it on exit)."""
    deadline = time.monotonic() + MAX_CALL_SECONDS
    while time.monotonic() < deadline and not person.done.is_set():
        with person.sandbox.lock:
            started = [c for c in person.sandbox.state["conferences"][person.account_sid].values()
                       if person.call_sid in c["participants"] and c["status"] == "in-progress"]
        if started:
            time.sleep(person.talk_seconds)
            person._log("hangup", after="talking")
            leave(person.sandbox, person.account_sid, person.call_sid, reason="hung up")
            return
        time.sleep(POLL)


def participant_create(sandbox, account_sid: str, conference: str, form: dict) -> dict:
    """`POST …/Conferences/{sid or name}/Participants.json`: dial `To` into the conference. Under the lock."""
    from devtools.twilio_sandbox.server import ApiError

    for name in ("To", "From"):
        if not form.get(name):
            raise ApiError(400, 21604 if name == "To" else 21603, f"A '{name}' phone number is required.")
    conf = find_or_create(sandbox, account_sid, conference, create=not conference.startswith("CF"))
    if conf is None:
        raise ApiError(404, 20404, f"The requested resource /Conferences/{conference} was not found")
    call_sid = sandbox.add_call(account_sid, to=form["To"], from_=form["From"], status="queued",
                                direction="outbound-api", start_time=None, params=dict(form))
    if form["To"].startswith("client:"):  # a browser dialer (signalling.py): it rings, its rep answers or not
        person = _browser(sandbox, account_sid, conf, call_sid, form)
    else:
        person = None
    person = person or TransferredPerson(sandbox=sandbox, account_sid=account_sid, to=form["To"], from_=form["From"],
                               call_sid=call_sid, form=dict(form), conference_sid=conf["sid"],
                               behaviour=behaviour_of(form["To"]),
                               talk_seconds=getattr(sandbox, "transfer_talk_seconds", TALK_SECONDS))
    sandbox.simulated[call_sid] = person
    now = _now()
    record = {"call_sid": call_sid, "conference_sid": conf["sid"], "account_sid": account_sid,
              "label": form.get("Label"), "hold": False, "muted": _bool(form.get("Muted"), False),
              "coaching": _bool(form.get("Coaching"), False), "call_sid_to_coach": form.get("CallSidToCoach"),
              "start_conference_on_enter": _bool(form.get("StartConferenceOnEnter"), True),
              "end_conference_on_exit": _bool(form.get("EndConferenceOnExit"), False),
              "status": "queued", "date_created": now, "date_updated": now, "queue_time": "0"}
    person.start()
    if person.behaviour == "accept" and not form["To"].startswith("client:"):
        threading.Thread(target=_talker, args=(person,), daemon=True).start()
    return participant_json(record)


def _browser(sandbox, account_sid: str, conf: dict, call_sid: str, form: dict):
    """The participant for `To=client:<identity>`: the first registered browser of that identity not in a call."""
    from devtools.twilio_sandbox import signalling

    server = getattr(sandbox, "_signalling", None)
    identity = form["To"][len("client:"):]
    clients = [c for c in server.registered(account_sid, identity) if not c.calls] if server is not None else []
    return signalling.browser_participant(
        sandbox, account_sid=account_sid, to=form["To"], from_=form["From"], call_sid=call_sid, form=dict(form),
        conference_sid=conf["sid"], behaviour="browser", client=clients[0] if clients else None)


def participant_update(sandbox, account_sid: str, conference_sid: str, call_sid: str, form: dict) -> dict:
    """Hold (with HoldUrl), mute, coach, announce to one participant. Under the lock."""
    from devtools.twilio_sandbox.server import ApiError

    conf = sandbox.state["conferences"][account_sid].get(conference_sid)
    participant = conf and conf["participants"].get(call_sid)
    if not participant:
        raise ApiError(404, 20404, f"The requested resource /Participants/{call_sid} was not found")
    before = (participant["coaching"], participant["call_sid_to_coach"])
    for param, key in (("Hold", "hold"), ("Muted", "muted"), ("Coaching", "coaching"),
                       ("EndConferenceOnExit", "end_conference_on_exit")):
        if param in form:
            participant[key] = _bool(form[param], participant[key])
    if "CallSidToCoach" in form:
        participant["call_sid_to_coach"] = form["CallSidToCoach"]
    if "Muted" in form:
        _participant_callback(sandbox, conf, call_sid, "participant-mute" if participant["muted"]
                              else "participant-unmute")
    if (participant["coaching"], participant["call_sid_to_coach"]) != before:
        _participant_callback(sandbox, conf, call_sid, "participant-modify")
    if form.get("Hold") is not None:
        conf["log"].append(("hold" if participant["hold"] else "unhold", call_sid, form.get("HoldUrl") or ""))
    if form.get("AnnounceUrl"):
        conf["log"].append(("announce", call_sid, form["AnnounceUrl"]))
    participant["date_updated"] = _now()
    return participant_json(participant)


# ---------------------------------------------------------------------------
# Audio in a conference: who hears whom, and participant status callbacks (coaching on the dialer's calls)
#
# A participant with media (a browser leg: signalling.py's peer; a sandbox person moved into the conference:
# `PersonInConference`) has an endpoint: `pull()` gives its next 20 ms of 8 kHz 16-bit PCM (or None), `push(pcm)`
# plays what it hears. A mixer thread per conference sums, every 20 ms, what each participant may hear: nobody on
# hold or muted is heard, a participant on hold hears nothing, and a coaching participant is heard only by the
# participant it coaches (`call_sid_to_coach`). `ConferenceAudio.heard[listener][speaker]` counts the frames of
# voice each participant received from each other one: a test reads it on the sandbox's side of a leg.

FRAME_BYTES = 320  # 20 ms of 8 kHz 16-bit PCM


def _audioop():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop

    return audioop


class ConferenceAudio:
    def __init__(self, sandbox, account_sid: str, conference_sid: str):
        from collections import Counter, defaultdict

        self.sandbox, self.account_sid, self.conference_sid = sandbox, account_sid, conference_sid
        self.endpoints: dict[str, object] = {}
        self.heard: dict[str, Counter] = defaultdict(Counter)
        self.thread: threading.Thread | None = None

    def attach(self, call_sid: str, endpoint) -> None:
        with self.sandbox.lock:
            self.endpoints[call_sid] = endpoint
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name=f"sandbox-mixer-{self.conference_sid}",
                                               daemon=True)
                self.thread.start()

    def detach(self, call_sid: str) -> None:
        with self.sandbox.lock:
            self.endpoints.pop(call_sid, None)

    def _conference(self) -> dict | None:
        return self.sandbox.state["conferences"][self.account_sid].get(self.conference_sid)

    def _run(self) -> None:
        from devtools.twilio_sandbox.media import VOICE_RMS

        audioop = _audioop()
        tick = time.monotonic()
        while True:
            with self.sandbox.lock:
                conf = self._conference()
                if conf is None or conf["status"] == "completed" or not self.endpoints:
                    self.thread = None
                    return
                started = conf["status"] == "in-progress"
                parts = {sid: dict(p) for sid, p in conf["participants"].items()}
                endpoints = dict(self.endpoints)
            frames = {sid: endpoint.pull() for sid, endpoint in endpoints.items()}
            if started:
                for listener, endpoint in endpoints.items():
                    me = parts.get(listener)
                    if me is None or me["hold"]:
                        continue
                    mix = None
                    for speaker, frame in frames.items():
                        other = parts.get(speaker)
                        if (speaker == listener or frame is None or other is None or other["muted"] or other["hold"]
                                or (other["coaching"] and other["call_sid_to_coach"] != listener)):
                            continue
                        if audioop.rms(frame, 2) > VOICE_RMS:
                            self.heard[listener][speaker] += 1
                        mix = frame if mix is None else audioop.add(mix, frame, 2)
                    if mix is not None:
                        endpoint.push(mix)
            tick += 0.02
            time.sleep(max(0.0, tick - time.monotonic()))


def audio_of(sandbox, account_sid: str, conference_sid: str) -> ConferenceAudio:
    """The conference's audio (kept beside the JSON state, which it is not part of)."""
    with sandbox.lock:
        table = sandbox.__dict__.setdefault("conference_audio", {})
        if conference_sid not in table:
            table[conference_sid] = ConferenceAudio(sandbox, account_sid, conference_sid)
        return table[conference_sid]


class PersonVoice:
    """A sandbox person's endpoint: says `words` now and then (espeak-ng), keeps what it hears."""

    def __init__(self, words: str, every: float = 3.0):
        from devtools.twilio_sandbox.media import speech_pcm

        self.speech = speech_pcm(words)
        self.every, self.pos, self.pause_until = every, 0, 0.0
        self.heard_frames = 0

    def pull(self) -> bytes | None:
        if time.monotonic() < self.pause_until:
            return None
        frame = self.speech[self.pos:self.pos + FRAME_BYTES]
        self.pos += FRAME_BYTES
        if self.pos >= len(self.speech):
            self.pos, self.pause_until = 0, time.monotonic() + self.every
        return frame.ljust(FRAME_BYTES, b"\0")

    def push(self, pcm: bytes) -> None:
        self.heard_frames += 1


@dataclass
class PersonInConference(SimulatedCall):
    """A sandbox person whose leg the app redirected into a conference (`<Dial><Conference>`): talks and listens
    through the conference's audio."""

    words: str = "I am the customer on this call."
    parent_call_sid: str = ""
    leg_callback: tuple | None = None  # the `<Number statusCallback>` of the leg: it still gets the final status

    def conference_media(self) -> PersonVoice:
        return PersonVoice(self.words)

    def _params(self, extra: dict) -> dict:
        return {**super()._params(extra), "ParentCallSid": self.parent_call_sid, "Direction": "outbound-dial",
                **extra}

    def _run(self) -> None:
        self.status_callback = self.leg_callback
        self._set_status("in-progress")
        self._follow(self.say)  # `say` carries the redirect's TwiML


def _participant_callback(sandbox, conf: dict, call_sid: str, event: str) -> None:
    """`statusCallback` of `<Conference>` (the first participant's, as Twilio): participant-join, -leave, -mute,
    -unmute, -modify (coaching changed), conference-start, -end. Sent from a thread, outside the lock."""
    callback = conf.get("status_callback")
    if not callback:
        return
    url, events = callback
    short = event.split("-", 1)[1] if event.startswith(("participant-", "conference-")) else event
    if short in ("unmute",):
        short = "mute"
    if events and short not in events:
        return
    p = conf["participants"].get(call_sid) or {}
    conf["sequence"] = conf.get("sequence", 0) + 1
    params = {"AccountSid": conf["account_sid"], "ConferenceSid": conf["sid"], "FriendlyName": conf["friendly_name"],
              "StatusCallbackEvent": event, "SequenceNumber": str(conf["sequence"]), "Timestamp": "",
              "CallSid": call_sid or "", "Muted": str(bool(p.get("muted"))).lower(),
              "Hold": str(bool(p.get("hold"))).lower(), "Coaching": str(bool(p.get("coaching"))).lower(),
              "EndConferenceOnExit": str(bool(p.get("end_conference_on_exit"))).lower(),
              "StartConferenceOnEnter": str(bool(p.get("start_conference_on_enter", True))).lower()}
    if p.get("coaching") and p.get("call_sid_to_coach"):
        params["CallSidToCoach"] = p["call_sid_to_coach"]
    if p.get("label"):
        params["ParticipantLabel"] = p["label"]
    token = sandbox._token(conf["account_sid"])
    conf["log"].append(("callback", call_sid, event))
    threading.Thread(target=sandbox._send_callback, args=(url, params, token), daemon=True).start()
