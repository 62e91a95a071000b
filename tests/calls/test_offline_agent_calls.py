"""Done when: a caller who says "I want to talk to sales" to the offline scripted agent, over the sandbox's phone
(Twilio's side of a Media Stream over the real socket, served by uvicorn), and answers the agent's questions as a
person would (by voice, or the key it offers), is handed over to sales in 5 calls of 5 within three agent turns,
and no wrong action ever runs."""
import threading

import pytest

from calls.models import CallActionRun, CallHandover, CallSession, CallTurn
from tests.calls.engine.conftest import asgi_server, make_call_setup  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)

VOICES = ["en-us+klatt", "en-us", "en-gb", "en-us+f3", "en-029"]


def _agent_said(call_sid: str, after: int, done: threading.Event) -> tuple[int, str]:
    """The agent's newest turn once there is one after `after` (what the caller just heard)."""
    while not done.is_set():
        turns = list(CallTurn.objects.filter(call_session__call_sid=call_sid, role="agent").order_by("seq")
                     .values_list("text", flat=True))
        if len(turns) > after:
            return len(turns), turns[-1]
        done.wait(0.1)
    return after, ""


def person_who_wants_sales(turns_allowed: int = 3):
    """A caller who wants sales: says so, answers a confirmation by voice (yes / no), and when the agent asks
    again or offers the keys, presses the key it offers for sales (a person does when their voice is not
    understood). Stops after the agent's third turn after the first words."""
    seen = {"agent_turns": 0, "asked": []}

    def step(call, turn):
        if turn == 0:
            return {"say": "I want to talk to sales"}
        count, said = _agent_said(call.call_sid, seen["agent_turns"], call.done)
        seen["agent_turns"] = count
        said = said.lower()
        seen["asked"].append(said)
        if turn > turns_allowed or not said:
            return None
        repeated = len(seen["asked"]) > 1 and seen["asked"][-2] == said.replace("sorry, i did not catch that. ", "")
        if "is that right" in said:
            if "sales, is that right" not in said:
                return {"say": "no"}
            if "sorry" in said or repeated:
                return {"press": "1"}  # asked again: the key it offers
            return {"say": "yes"}
        if "press 1" in said:
            return {"press": "1"}
        return {"say": "I want to talk to sales"}
    return step


def test_callers_who_want_sales_are_handed_over_and_no_wrong_action_runs(asgi_server, twilio_sandbox,  # noqa: F811
                                                                          settings):
    settings.PUBLIC_BASE_URL = f"http://127.0.0.1:{asgi_server.port}"
    setup = make_call_setup(sandbox=twilio_sandbox, transport="media_streams")
    number = "+15125550100"
    twilio_sandbox.add_incoming_number(setup.connection.account_sid, number, voice_url=setup.connector.webhook_url,
                                       voice_method="POST")
    # Five callers at once (five voices): recognition runs in the pool, so no call waits for another's decode.
    calls = [twilio_sandbox.simulate_call(setup.connection.account_sid, number, script=person_who_wants_sales(),
                                          voice=voice, limit=240.0) for voice in VOICES]
    for call in calls:
        assert call.done.wait(240), call.events
    for call in calls:
        session = CallSession.objects.get(call_sid=call.call_sid)
        story = [(e["at"], e["event"], e.get("text") or e.get("digit") or e.get("seconds") or e.get("what"))
                 for e in call.events if e["event"] not in ("webhook", "twiml", "status_callback")]
        story += list(CallTurn.objects.filter(call_session=session).order_by("seq").values_list("role", "text"))
        handovers = list(CallHandover.objects.filter(call_session=session).values_list("action_name", flat=True))
        assert handovers == ["transfer_to_sales"], (call.voice, story)
        assert not CallActionRun.objects.filter(call_session=session).exists()
        dial = [e for e in call.events if e["event"] == "dial"]
        assert dial and dial[0]["to"] == ["+31201234567"], (call.voice, story)
        agent_turns = CallTurn.objects.filter(call_session=session, role="agent").count()
        assert agent_turns <= 4, (call.voice, story)  # the greeting and at most three turns
