"""The scripted agent: no outside service. Greets, answers from the version's table, hands over by rule.

- `scripted_answers`: `[{"keywords": ["opening", "hours"], "answer": "We're open 9 to 5."}]`
- `handover_rules`: `[{"keyword": "sales", "digit": "1", "action": "transfer_to_sales"}]`; the action
  `"hangup"` ends the call. A rule naming an API action runs it with fixed parameters and speaks a field of
  the answer: `{"keyword": "order", "digit": "2", "action": "order_status", "parameters": {"order_id": "42"},
  "field": "/order/status", "say": "Your order is {result}.", "error_say": "Sorry, I could not look it up."}`
  (`field` is a JSON pointer into the answer; without it `{result}` is the answer as the model would get it).
- Over Media Streams it speaks with the offline stack (`calls.providers.cascaded.VoicePipeline`: webrtcvad,
  pocketsphinx listening for the version's keywords, espeak-ng): the caller's words pick answers and handover
  rules as typed words do. Without espeak-ng or pocketsphinx on the machine, or with the environment variable
  `SCRIPTED_SPEECH=tones`, it plays pre-rendered tones instead and detects the caller's voice (frame energy) for
  barge-in; DTMF rules work either way. With `SCRIPTED_AUDIO_ECHO=1` it plays the caller's audio straight back
  (a line test; the media-streams benchmark uses it).
- A version with knowledge bases (knowledge/): when neither a handover rule nor a scripted answer matches, the
  agent reads out the best passage (`knowledge.runtime.knowledge_best_answer`, searched off the event loop), only
  when it holds enough of the caller's words (`BEST_ANSWER_MIN_COVERAGE`, so junk is not read out); the
  passage used goes to the transcript as an event line (source and position), as with the other providers.

Spoken words are a guess (the offline recogniser is weak over the phone), so the agent never acts on a guess
(`Dialogue`): it acts at once only on a confident, long phrase ("talk to sales": the words and the keyword
search agree); otherwise it confirms ("Sales, is that right? Say yes or press 1.", the answer heard with the
closed yes/no grammar) or offers the keys ("Say sales or press 1. ..."). Keys and typed words are exact: they
act at once. A wrong action is worse than a question.
"""
from __future__ import annotations

import asyncio
import base64
import json
import re
from dataclasses import dataclass

from calls.engine import audio
from calls.engine.events import (
    AudioOut,
    Handover,
    Hangup,
    PlayAudio,
    ReplyDone,
    RunAction,
    SpeechStarted,
    TextOut,
    Transcript,
)
from calls.providers.base import Provider, logger

CONFIRM_TRIES = 1  # confirmations not understood before the agent offers the keys (measured: bench.offline_agent)


@dataclass
class Step:
    """What the agent does next: say `say`; run `rule` (a handover rule) or speak `answer` (a scripted answer);
    listen for `expect` ("open" words, or the "answer" to a yes/no question)."""

    say: str = ""
    rule: dict | None = None
    answer: dict | None = None
    expect: str = "open"
    unmatched: bool = False  # nothing the caller said matched a rule or an answer (the knowledge may)


def _label(rule: dict) -> str:
    keyword = str(rule.get("keyword") or "").strip()
    return keyword or str(rule.get("action") or "").replace("_", " ").strip()


class Dialogue:
    """The scripted agent's decisions on spoken turns: never act on a guess.

    - A handover rule's keyword heard in a long phrase ("to sales") by both the words and the keyword search, with
      no other rule heard: act at once.
    - A rule heard less surely (by one of them): confirm it, and listen for yes/no only.
    - Nothing (or two rules) heard: offer the keys ("Say sales or press 1.").
    - While confirming: yes acts, no (or an answer not understood) offers the keys.
    - After the keys were offered, a spoken guess gets the keys again (not a confirmation).
    A scripted answer (information, not an action) is spoken when its keyword is among the recognised words."""

    def __init__(self, rules: list[dict], answers: list[dict]):
        self.rules = [r for r in rules if isinstance(r, dict) and r.get("action")]
        self.answers = answers
        self.confirming: dict | None = None
        self.tries = 0
        self.offered = False  # the keys were offered: a spoken guess now gets the keys again, not a confirmation

    def offer_keys(self, lead: str = "Sorry, I did not catch that.") -> Step:
        self.confirming, self.tries, self.offered = None, 0, True
        options = []
        for rule in self.rules:
            label, digit = _label(rule), str(rule.get("digit") or "")
            if label and digit:
                options.append(f"Say {label} or press {digit}.")
            elif label:
                options.append(f"Say {label}.")
        return Step(say=" ".join([lead, *options]).strip() or DEFAULT_ANSWER)

    def confirm(self, rule: dict, lead: str = "") -> Step:
        self.confirming = rule
        digit = str(rule.get("digit") or "")
        how = f"Say yes or press {digit}." if digit else "Say yes or no."
        label = _label(rule)
        return Step(say=" ".join(x for x in (lead, f"{label[:1].upper()}{label[1:]}, is that right? {how}") if x),
                    expect="answer")

    def pressed(self, digit: str) -> Step | None:
        for rule in self.rules:
            if str(rule.get("digit") or "") == digit:
                self.confirming, self.tries = None, 0
                return Step(rule=rule)
        return None

    def heard(self, text: str, keywords: tuple = (), answer: str = "") -> Step:
        if self.confirming is not None:
            rule = self.confirming
            if answer == "yes":
                self.confirming, self.tries = None, 0
                return Step(rule=rule)
            if answer == "no":
                return self.offer_keys("Sorry about that.")
            self.tries += 1
            if self.tries >= CONFIRM_TRIES:
                return self.offer_keys()
            return self.confirm(rule, "Sorry, I did not catch that.")
        lowered = " ".join(re.findall(r"[\w']+", (text or "").lower()))
        words = set(lowered.split())
        spotted = {str(k).lower() for k in keywords}
        sure, maybe = [], []
        for rule in self.rules:
            keyword = str(rule.get("keyword") or "").lower().strip()
            if not keyword:
                continue
            in_words = keyword in words or (" " in keyword and keyword in lowered)
            if in_words and keyword in spotted and f"to {keyword}" in lowered:
                sure.append(rule)
            elif in_words or keyword in spotted:
                maybe.append(rule)
        if len(sure) == 1 and not maybe:
            return Step(rule=sure[0])
        if self.offered and (sure or maybe):
            # After the keys were offered, a single word is what the caller says, and the recogniser cannot hear
            # single words over the phone (bench.offline_agent): the keys again, not a confirmation of a guess.
            return self.offer_keys("Sorry, I am not sure. Please use the keys.")
        if len(sure) + len(maybe) == 1:
            return self.confirm((sure + maybe)[0])
        if sure or maybe:
            return self.offer_keys("Sorry, I am not sure which one you want.")
        for row in self.answers:
            keys = [str(k).lower().strip() for k in row.get("keywords", []) if str(k).strip()]
            if keys and any(k in words or (" " in k and k in lowered) for k in keys):
                return Step(say=str(row.get("answer") or ""), answer=row)
        step = self.offer_keys()
        step.unmatched = True
        return step

SPEECH_LEVEL = 8.0  # mean |sample|/128 above which a frame counts as voice
SPEECH_FRAMES = 3  # consecutive voiced frames (60 ms) before "speech started"
SILENCE_FRAMES = 25  # 500 ms of quiet ends the utterance
DEFAULT_ANSWER = "Sorry, I can't help with that. Could you say it another way?"
# An outbound call's greeting waits for the callee's first words ("Hello?"), or this long of them saying nothing.
GREETING_WAIT_SECONDS = 3.0


class ScriptedProvider(Provider):
    name = "scripted"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.echo = ctx.modality == "audio" and ctx.setting("SCRIPTED_AUDIO_ECHO") in ("1", "true", "yes")
        self._voiced = 0
        self._quiet = 0
        self._speaking = False
        self._reply_seq = 0
        self._instruction = ""
        self._pending_actions: dict[str, dict] = {}  # call_id → the rule that started the API action
        self.voice = None  # the offline speech pipeline, when it can run
        self._greeting_held = False
        self._greeting_timer = None
        self._wants_speech = (ctx.modality == "audio" and not self.echo
                              and ctx.setting("SCRIPTED_SPEECH", "offline").lower() != "tones")
        self.dialogue = Dialogue(list(ctx.handover_rules or []), list(ctx.scripted_answers or []))

    async def start(self) -> None:
        voice = self._voice() if self._wants_speech else None
        self.voice = voice
        if self.ctx.greeting and not self.echo:
            if self.ctx.greet_after_callee:
                # An outbound call: the callee speaks first, as people expect; greet on their first words.
                self._greeting_held = True
                self._greeting_timer = asyncio.get_running_loop().call_later(GREETING_WAIT_SECONDS, self._greet)
            else:
                self._say(self.ctx.greeting, "greeting")  # spoken while the recogniser loads
        if voice is not None:
            from calls.providers.speech.base import SpeechError

            try:
                await voice.start()
            except SpeechError as exc:
                logger.warning("scripted agent: offline recognition unavailable, keys only",
                               extra={"reason": str(exc)})
                await voice.close()
                self.voice = None

    def _voice(self):
        from calls.providers.cascaded import VoicePipeline, scripted_hints, vad_from_settings
        from calls.providers.speech import offline
        from calls.providers.speech.base import SpeechSettings

        if not offline.espeak_available():
            logger.warning("scripted agent speaks tones: espeak-ng is not installed")
            return None
        # The keyword search spots the handover rules' keywords (answers go by the recognised words only).
        rule_keywords = tuple(h for h in scripted_hints(self.ctx)
                              if h in {str(r.get("keyword") or "").strip().lower() for r in self.ctx.handover_rules})
        settings = SpeechSettings(language=self.ctx.language or "en-US", voice=self.ctx.voice, hints=rule_keywords)
        return VoicePipeline(self, stt=offline.PocketsphinxSpeechToText(settings),
                             tts=offline.EspeakTextToSpeech(settings), voice_activity=vad_from_settings(self.ctx),
                             on_turn=self._heard)

    def _greet(self) -> None:
        if self._greeting_held:
            self._greeting_held = False
            if self._greeting_timer is not None:
                self._greeting_timer.cancel()
            self._say(self.ctx.greeting, "greeting")

    async def close(self) -> None:
        if self._greeting_timer is not None:
            self._greeting_timer.cancel()
        if self.voice is not None:
            await self.voice.close()
        await super().close()

    async def _heard(self, text: str, keywords: tuple) -> None:
        """A spoken turn: a guess, decided by `Dialogue` (confirm or offer keys rather than act on it)."""
        stt = self.voice.stt if self.voice is not None else None
        result = getattr(stt, "last_result", None) or {}
        answer = str(result.get("answer") or "") if getattr(stt, "expect", "open") == "answer" else ""
        missing = [k for k in keywords if k not in (text or "").lower()]
        shown = answer or text
        self.emit(Transcript("caller", shown + (f" [{', '.join(missing)}]" if missing else "")))
        if self._instruction:
            text_, self._instruction = self._instruction, ""
            self._say(text_)
            return
        offered = self.dialogue.offered
        step = self.dialogue.heard(text, keywords, answer)
        if step.unmatched and await self._knowledge_answer(text):
            self.dialogue.offered = offered  # the keys were not offered after all
            return
        self._do(step)

    async def _knowledge_answer(self, text: str) -> bool:
        """No rule or scripted answer matched: say the best passage of the version's knowledge, if one answers
        well enough. The search reads the database: in a worker thread, never on the event loop."""
        if self.ctx.knowledge.empty or not (text or "").strip():
            return False
        from channels.db import database_sync_to_async

        from knowledge.runtime import knowledge_best_answer

        try:
            best = await database_sync_to_async(knowledge_best_answer)(self.ctx.knowledge, text)
        except Exception:  # noqa: BLE001 - the agent answers without it rather than not at all
            logger.exception("knowledge lookup failed")
            return False
        if best is None:
            return False
        answer, lookup = best
        self.emit(Transcript("event", lookup.transcript_line()))
        self._say(answer)
        return True

    def _do(self, step: Step) -> None:
        stt = self.voice.stt if self.voice is not None else None
        if stt is not None and hasattr(stt, "expect"):
            stt.expect = step.expect  # the closed yes/no grammar while a confirmation is pending
        if step.rule is not None:
            self._act(str(step.rule.get("action") or ""), str(step.rule.get("say") or ""), step.rule)
            return
        self._say(step.say)
        if step.answer is not None and step.answer.get("play"):
            self.emit(PlayAudio(str(step.answer["play"])))

    # -- output -----------------------------------------------------------------

    def _say(self, text: str, prompt_name: str = "answer", then: tuple = ()) -> None:
        self._reply_seq += 1
        item_id = f"scripted-{self._reply_seq}"
        if self.voice is not None:
            self.voice.cancel_reply()
            reply = self.voice.new_reply()
            reply.task = asyncio.create_task(self._speak(self.voice, reply, text, then),
                                             name=f"scripted-say-{self._reply_seq}")
            return
        if self.ctx.modality == "audio":
            for payload in audio.chunks_b64(audio.prompt(prompt_name)):
                self.emit(AudioOut(payload, item_id))
            self.emit(ReplyDone(item_id))
        else:
            words = text.split(" ")
            for i, word in enumerate(words):
                self.emit(TextOut(word if i == len(words) - 1 else word + " ", last=i == len(words) - 1))
            self.emit(ReplyDone(item_id))
        self.emit(Transcript("agent", text))
        for event in then:
            self.emit(event)

    async def _speak(self, voice, reply, text: str, then: tuple) -> None:
        from calls.providers.speech.base import SpeechError

        try:
            await voice.speak(reply, [text], then=then, transcript=text)
        except SpeechError as exc:
            logger.warning("scripted agent could not speak", extra={"reason": str(exc)})
            for payload in audio.chunks_b64(audio.prompt("answer")):
                self.emit(AudioOut(payload, reply.item_id))
            self.emit(ReplyDone(reply.item_id))
            self.emit(Transcript("agent", text))
            for event in then:
                self.emit(event)

    def _act(self, action: str, say: str, rule: dict | None = None) -> None:
        if self.ctx.api_action(action) is not None:
            self._reply_seq += 1
            call_id = f"scripted-action-{self._reply_seq}"
            self._pending_actions[call_id] = rule or {}
            parameters = (rule or {}).get("parameters")
            self.emit(RunAction(action, call_id, parameters if isinstance(parameters, dict) else {}))
            return
        # The handover (or hang-up) follows the words: the engine lets them play out before redirecting.
        if action == "hangup":
            self._say(say or "Goodbye.", then=(Hangup("agent"),))
        else:
            self._say(say or "Let me transfer you.", "transfer", then=(Handover(action),))

    # -- input ------------------------------------------------------------------

    async def on_audio(self, payload_b64: str) -> None:
        if self.echo:
            self.emit(AudioOut(payload_b64))
            return
        if self.voice is not None:
            await self.voice.feed(payload_b64)
            return
        try:
            level = audio.frame_level(base64.b64decode(payload_b64))
        except (ValueError, TypeError):
            return
        if level >= SPEECH_LEVEL:
            self._voiced += 1
            self._quiet = 0
            if self._voiced >= SPEECH_FRAMES and not self._speaking:
                self._speaking = True
                self.emit(SpeechStarted())
        else:
            self._voiced = 0
            if self._speaking:
                self._quiet += 1
                if self._quiet >= SILENCE_FRAMES:
                    self._speaking = False
                    self._quiet = 0

    async def on_text(self, text: str, keywords: tuple = ()) -> None:
        text = (text or "").strip()
        if not text and not keywords:
            return
        missing = [k for k in keywords if k not in text.lower()]
        # The words recognised, and the keywords the keyword search spotted that the words missed.
        self.emit(Transcript("caller", text + (f" [{', '.join(missing)}]" if missing else "")))
        text = " ".join([text, *missing]).strip()
        if self._greeting_held:  # the callee's "Hello?": the agent greets them now
            self._greet()
            return
        if self._instruction:
            # A supervisor's instruction: the scripted agent's next reply says it.
            text_, self._instruction = self._instruction, ""
            self._say(text_)
            return
        words = set(re.findall(r"[\w']+", text.lower()))
        lowered = text.lower()
        for rule in self.ctx.handover_rules:
            keyword = str(rule.get("keyword") or "").lower().strip()
            if keyword and (keyword in words or (" " in keyword and keyword in lowered)):
                self._act(str(rule.get("action") or ""), str(rule.get("say") or ""), rule)
                return
        for row in self.ctx.scripted_answers:
            keywords = [str(k).lower().strip() for k in row.get("keywords", []) if str(k).strip()]
            if keywords and any(k in words or (" " in k and k in lowered) for k in keywords):
                self._say(str(row.get("answer") or ""))
                if row.get("play"):
                    self.emit(PlayAudio(str(row["play"])))
                return
        if await self._knowledge_answer(text):
            return
        self._say(DEFAULT_ANSWER)

    async def on_dtmf(self, digit: str) -> None:
        step = self.dialogue.pressed(digit)  # a key is exact: its rule runs at once
        if step is not None:
            self._do(step)
            return
        if self._instruction:
            text, self._instruction = self._instruction, ""
            self._say(text)

    async def on_tool_result(self, call_id: str, result: str) -> None:
        if self._pending_actions.pop(call_id, None) is not None:
            self._say("Sorry, I could not do that right now.")
            return
        self._say("Sorry, I can't transfer you there.")

    async def on_action_result(self, call_id: str, outcome) -> None:
        rule = self._pending_actions.pop(call_id, None)
        if rule is None:
            return
        if not outcome.ok:
            self._say(str(rule.get("error_say") or "Sorry, I could not do that right now."))
            return
        value = outcome.result_text
        if rule.get("field"):
            from agents.action_requests import json_pointer, result_text

            try:
                value = result_text(json_pointer(json.loads(outcome.result_text), str(rule["field"])))
            except (ValueError, KeyError):
                self._say(str(rule.get("error_say") or "Sorry, I could not do that right now."))
                return
        self._say(str(rule.get("say") or "{result}").replace("{result}", value))

    async def on_instruction(self, text: str) -> None:
        """The scripted agent has no language model: its next reply (to words or a key) is the instruction's text."""
        await super().on_instruction(text)
        self._instruction = text.strip()
