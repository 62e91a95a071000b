"""Coaching on a real browser call (issue 25): a rep talks to a sandbox person, a supervisor listens, then
whispers; the whisper reaches the rep's leg and never the customer's.

Audio is measured on the sandbox's side of each leg: the conference's mixer counts, per listener, the 20 ms frames
of voice it received from each other participant (devtools/twilio_sandbox/conference.py `ConferenceAudio.heard`).
Chromium's fake microphone gives both browsers a voice."""
from __future__ import annotations

import pytest

from dialer.models import Call, CallCoaching, CallLeg
from tests.dialer.test_dialer_calls_browser import (  # noqa: F401 - two of them are fixtures
    NUMBER,
    _rep_page,
    _state,
    chromium_with_mic,
    sandboxed,
    wait_for,
)
from tests.factories import MembershipFactory, UserFactory
from tests.fixtures_browser import login
from workspaces.models import AuditEntry, Membership

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _coaching_line(page, text):
    page.wait_for_function(
        f"() => (document.querySelector('[data-testid=dialer-coaching]').textContent || '').includes({text!r})")


def _supervisor_page(browser, live_server, workspace):
    MembershipFactory(workspace=workspace, user=UserFactory(username="sam"), role=Membership.Role.ADMIN)
    supervisor = browser.new_context(base_url=live_server.url, ignore_https_errors=True).new_page()
    supervisor.set_default_timeout(20_000)
    supervisor.console_errors = []
    supervisor.on("pageerror", lambda exc: supervisor.console_errors.append(str(exc)))
    login(supervisor, live_server, "sam")
    supervisor.goto(live_server.url + "/calls/live/")
    _state(supervisor, "Ready")
    return supervisor


def test_a_supervisor_listens_then_whispers_and_only_the_rep_hears_the_whisper(
        chromium_with_mic, sandboxed, live_server, workspace):  # noqa: F811 - the imported fixtures
    sandbox, _ = sandboxed
    rep = _rep_page(chromium_with_mic, live_server, workspace, "rita")
    rep.click("[data-testid=dialer-toggle]")
    rep.fill("#dialer-number", "+15125550123")  # a sandbox person who answers
    rep.click("[data-role=call]")
    _state(rep, "In call")
    call = wait_for(lambda: Call.objects.filter(status=Call.Status.IN_PROGRESS, answered_at__isnull=False).first(),
                    what="the rep's call answered")
    person_sid = wait_for(lambda: CallLeg.objects.filter(call=call, status="in-progress").values_list(
        "sid", flat=True).first(), what="the person's leg")

    supervisor = _supervisor_page(chromium_with_mic, live_server, workspace)
    supervisor.click(f"tr[data-call='{call.pk}'] [data-coach-mode=listen]")
    _coaching_line(rep, "sam is listening")  # the rep sees who listens (after the conference's join callback)
    _state(supervisor, "In call")

    coaching = CallCoaching.objects.get(call=call)
    call.refresh_from_db()
    audio = wait_for(lambda: sandbox.__dict__.get("conference_audio", {}).get(call.conference_sid),
                     what="the conference's audio")
    sup_sid = coaching.participant_sid
    assert Call.objects.get(sid=sup_sid).coached_call_id == call.pk  # not a call of the log's
    wait_for(lambda: audio.heard[sup_sid][call.sid] > 5, what="the supervisor hearing the rep")
    wait_for(lambda: audio.heard[sup_sid][person_sid] > 5, what="the supervisor hearing the customer")
    assert audio.heard[call.sid][sup_sid] == 0  # listening: muted

    supervisor.click(f"tr[data-call='{call.pk}'] [data-coach-mode=whisper]")
    _coaching_line(rep, "sam is whispering to you")
    wait_for(lambda: audio.heard[call.sid][sup_sid] > 10, what="the whisper at the rep's leg")
    wait_for(lambda: audio.heard[person_sid][call.sid] > 10, what="the rep still heard by the customer")
    assert audio.heard[person_sid][sup_sid] == 0  # the customer's leg never received the whisper

    actions = list(AuditEntry.objects.filter(workspace=workspace, actor__username="sam").values_list(
        "action", "details__mode"))
    assert sorted(actions) == [(AuditEntry.Action.CALL_INTERVENED, "whisper"), (AuditEntry.Action.CALL_LISTENED, "listen")]

    assert audio.heard[person_sid][sup_sid] == 0  # still none, after the whole whisper
    rep.click("[data-role=hangup]")  # the rep's leg ends the conference: the supervisor is out too
    _state(supervisor, "Call ended")
    wait_for(lambda: CallCoaching.objects.filter(pk=coaching.pk, ended_at__isnull=False).exists(),
             what="the coaching ended")
    ended = wait_for(lambda: Call.objects.filter(pk=call.pk, status=Call.Status.COMPLETED, duration__isnull=False,
                                                 legs__sid=person_sid, legs__status=Call.Status.COMPLETED).first(),
                     what="the call and the person's leg completed, as any call")
    assert ended.conference_name == f"dialer-{call.sid}"
    for leg in (sup_sid, person_sid, call.sid):  # the sandbox's legs finished (their peers closed) before teardown
        assert sandbox.simulated[leg].done.wait(20), leg
    assert not rep.console_errors and not supervisor.console_errors, (rep.console_errors, supervisor.console_errors)
    supervisor.context.close()
    rep.context.close()


def test_on_an_inbound_call_the_reps_browser_leg_moves_and_the_supervisor_hears_rep_and_caller(
        chromium_with_mic, sandboxed, live_server, workspace):  # noqa: F811 - the imported fixtures
    sandbox, sid = sandboxed
    rep = _rep_page(chromium_with_mic, live_server, workspace, "rita")
    inbound = sandbox.simulate_call(sid, NUMBER, from_="+13105550111", say="Hello, I am calling about my order.")
    rep.locator("[data-testid=dialer-incoming]").wait_for()
    rep.click("[data-role=accept]")
    _state(rep, "In call")
    call = wait_for(lambda: Call.objects.filter(sid=inbound.call_sid, answered_at__isnull=False).first(),
                    what="the inbound call answered")
    rep_leg = wait_for(lambda: CallLeg.objects.filter(call=call, kind=CallLeg.Kind.CLIENT, status="in-progress")
                       .values_list("sid", flat=True).first(), what="the rep's leg")

    supervisor = _supervisor_page(chromium_with_mic, live_server, workspace)
    supervisor.click(f"tr[data-call='{call.pk}'] [data-coach-mode=listen]")
    _coaching_line(rep, "sam is listening")
    call.refresh_from_db()
    audio = wait_for(lambda: sandbox.__dict__.get("conference_audio", {}).get(call.conference_sid),
                     what="the conference's audio")
    sup_sid = CallCoaching.objects.get(call=call).participant_sid
    wait_for(lambda: audio.heard[sup_sid][rep_leg] > 5, what="the supervisor hearing the rep")
    wait_for(lambda: audio.heard[sup_sid][inbound.call_sid] > 5, what="the supervisor hearing the caller")
    wait_for(lambda: audio.heard[inbound.call_sid][rep_leg] > 5, what="the caller still hearing the rep")
    assert audio.heard[rep_leg][sup_sid] == 0 and audio.heard[inbound.call_sid][sup_sid] == 0  # muted

    rep.click("[data-role=hangup]")  # the rep's leg ends the conference: caller and supervisor are out too
    _state(supervisor, "Call ended")
    assert inbound.done.wait(20), inbound.events
    wait_for(lambda: Call.objects.filter(pk=call.pk, status=Call.Status.COMPLETED).exists(), what="the call completed")
    assert not rep.console_errors and not supervisor.console_errors, (rep.console_errors, supervisor.console_errors)
    supervisor.context.close()
    rep.context.close()
