"""A live (simulated Twilio) scripted call ends: its post-call analysis is there, rule-based, without any vendor."""
import pytest
from websockets.asyncio.client import connect

from calls.models import CallAnalysis, CallTurn

from .conftest import TwilioMediaClient, eventually, make_call_setup, run, until_true

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_scripted_call_that_ends_gets_its_rule_based_analysis(asgi_server, twilio_sandbox):
    setup = make_call_setup(sandbox=twilio_sandbox)
    setup.version.analysis_summary = True
    setup.version.analysis_fields = [
        {"name": "pressed_four", "type": "boolean", "description": "", "keywords": ["pressed 4"]},
        {"name": "pressed_seven", "type": "boolean", "description": "", "keywords": ["pressed 7"]}]
    setup.version.save()
    session = setup.new_session(sandbox=twilio_sandbox)
    token = setup.token(session)

    async def scenario():
        async with connect(asgi_server.ws_base + "/v1/stream/media") as ws:
            twilio = TwilioMediaClient(ws)
            await twilio.start(token=token, call_sid=session.call_sid, account_sid=setup.connection.account_sid)
            await twilio.read_until(lambda m: m.get("event") == "mark")
            await twilio.dtmf("4")
            await until_true(lambda: CallTurn.objects.filter(call_session=session, text="(pressed 4)").exists())
            await twilio.stop()

    run(scenario())
    eventually(lambda: CallAnalysis.objects.filter(call_session=session, status="done").exists())
    analysis = CallAnalysis.objects.get(call_session=session)
    assert analysis.model_used == "rules"
    assert analysis.fields == {"pressed_four": True, "pressed_seven": False}
    assert "(pressed 4)" in analysis.summary and "Hello, this is Ava." in analysis.summary
