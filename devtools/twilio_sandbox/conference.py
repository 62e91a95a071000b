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
        if conf["status"] == "init" and conf["participants"][call_sid]["start_conference_on_enter"]:
            conf["status"] = "in-progress"
            conf["log"].append(("start", call_sid, sorted(conf["participants"])))


def leave(sandbox, account_sid: str, call_sid: str, reason: str = "left") -> None:
    """The call leaves every conference it is in (ending those it ends on exit). Under or outside the lock."""
    with sandbox.lock:
        for conf in sandbox.state["conferences"].get(account_sid, {}).values():
            participant = conf["participants"].pop(call_sid, None)
            if participant is None:
                continue
            conf["log"].append(("leave", call_sid, reason))
            if participant["end_conference_on_exit"] and conf["status"] != "completed":
                conf.update(status="completed", date_updated=_now(), call_sid_ending_conference=call_sid,
                            reason_conference_ended="participant-with-end-conference-on-exit-left")
                conf["log"].append(("end", call_sid, sorted(conf["participants"])))
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
             "label": noun.get("participantLabel")}
    _join(call.sandbox, conf, call.call_sid, attrs)
    call._log("conference", name=name, conference_sid=conf["sid"], status=conf["status"],
              wait_url=noun.get("waitUrl", ""))
    if conf["status"] == "init":
        call._log("hold", music=noun.get("waitUrl") or "twilio-default")
    started_logged = conf["status"] == "in-progress"
    while not call._out_of_time():
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
    for param, key in (("Hold", "hold"), ("Muted", "muted"), ("Coaching", "coaching"),
                       ("EndConferenceOnExit", "end_conference_on_exit")):
        if param in form:
            participant[key] = _bool(form[param], participant[key])
    if "CallSidToCoach" in form:
        participant["call_sid_to_coach"] = form["CallSidToCoach"]
    if form.get("Hold") is not None:
        conf["log"].append(("hold" if participant["hold"] else "unhold", call_sid, form.get("HoldUrl") or ""))
    if form.get("AnnounceUrl"):
        conf["log"].append(("announce", call_sid, form["AnnounceUrl"]))
    participant["date_updated"] = _now()
    return participant_json(participant)
