"""Post-call analysis: a summary, structured fields and a success verdict, computed from the transcript.

The definition is the agent version's (`analysis_summary`, `analysis_fields`, `analysis_success`, versioned with
it). When a call ends, `analysis_enqueue` queues `calls.tasks.call_analysis_compute` on commit (only when the
version asks for something). The task calls `call_analysis_compute`:

- Scripted versions: a rule-based analysis (keywords in the transcript -> field values, a summary from the
  turns), no vendor, so the offline product shows it. Its success verdict names the rule that decided it
  (`_rule_success`: the criterion's quoted phrases, said by the caller or by the agent after the caller spoke).
- No success without evidence: a call where the caller said nothing and pressed no key is never a success,
  whatever decided it (rules or a model: `_model_success`); the reason is stored and sent as `success_rule`.
- Other versions: the chat model, from the environment's secrets/variables. ``ANALYSIS_PROVIDER``
  (environment variable/secret, else the Django setting, else ``openai``) picks the vendor:
  - ``openai``: any OpenAI-compatible server: ``OPENAI_API_KEY``, ``OPENAI_BASE_URL`` (typed by users, so
    requests go through ``workspaces.outbound``), ``OPENAI_ANALYSIS_MODEL`` (else ``OPENAI_CHAT_MODEL``, else
    gpt-4o-mini). Asks for JSON with ``response_format: json_schema`` (strict).
  - ``anthropic``: the official SDK (forced tool use whose input schema is the fields' schema):
    ``ANTHROPIC_API_KEY``, ``ANTHROPIC_BASE_URL``, ``ANTHROPIC_ANALYSIS_MODEL`` (else ``ANTHROPIC_CHAT_MODEL``,
    else claude-haiku-4-5). A version that talks through a chat model whose vendor is Anthropic (`chat_vendor`)
    uses Anthropic whatever the setting. The SDK runs on the outbound guard's httpx2 client (no second resolution).
  The answer is validated against the schema; an invalid answer is asked for again once, then recorded as failed.
- Transient vendor errors (timeouts, connection errors, 429, 5xx) raise `TransientAnalysisError`: the task retries
  with exponential backoff; on the last attempt they are recorded as failed. Permanent ones (other 4xx, refused
  URL, missing key, invalid JSON twice) are recorded at once with the reason.

At most one `CallAnalysis` per call (unique constraint): a second run of the task finds it done and does nothing;
"Analyse again" (`call_analysis_request`) re-runs it with ``force`` using the agent's newest definition.
No secret is stored, logged or put in a reason.
"""
from __future__ import annotations

import json
import logging
import re

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from calls.models import CallAnalysis, CallSession, CallTurn
from webhooks import services as webhook_services
from webhooks.models import EventType

logger = logging.getLogger("calls.analysis")

DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
DEFAULT_ANTHROPIC_MODEL = "claude-haiku-4-5"
TIMEOUT_SECONDS = 30.0
MAX_TRANSCRIPT_CHARS = 60_000
MAX_RETRIES = 5  # Celery retries of transient errors (the task's max_retries)
RETRY_BASE_SECONDS = 30  # 30 s, 60 s, 120 s, … (the task's countdown)
TOOL_NAME = "record_call_analysis"


class AnalysisError(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class TransientAnalysisError(AnalysisError):
    """Worth trying again later (timeout, connection, 429, 5xx)."""


class PermanentAnalysisError(AnalysisError):
    """Trying again will not help (refused request, missing key, the model keeps answering invalid JSON)."""


def retry_delay(retries: int) -> int:
    return RETRY_BASE_SECONDS * (2 ** retries)


# ---------------------------------------------------------------------------
# Definition and schema


def analysis_definition(version) -> dict:
    return {"summary": bool(version.analysis_summary), "fields": list(version.analysis_fields or []),
            "success": (version.analysis_success or "").strip()}


def analysis_wanted(definition: dict) -> bool:
    return bool(definition["summary"] or definition["fields"] or definition["success"])


def _nullable(schema: dict) -> dict:
    out = dict(schema)
    out["type"] = [schema["type"], "null"]
    if "enum" in schema:
        out["enum"] = [*schema["enum"], None]
    return out


def json_schema(definition: dict) -> dict:
    """The JSON schema the model's answer must match (strict: every key required, nothing else)."""
    properties: dict = {}
    if definition["summary"]:
        properties["summary"] = {"type": "string", "description": "A short summary of the call (2-4 sentences)."}
    fields_props = {}
    for f in definition["fields"]:
        base = {"text": {"type": "string"}, "number": {"type": "number"}, "boolean": {"type": "boolean"},
                "enum": {"type": "string", "enum": list(f.get("values") or [])}}[f["type"]]
        prop = _nullable(base)
        prop["description"] = (f.get("description") or f["name"]) + " (null when the call does not tell)"
        fields_props[f["name"]] = prop
    if fields_props:
        properties["fields"] = {"type": "object", "properties": fields_props, "required": list(fields_props),
                                "additionalProperties": False}
    if definition["success"]:
        properties["success"] = {"type": ["boolean", "null"],
                                 "description": "Whether the call met the success criterion."}
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def _type_ok(value, schema: dict) -> bool:
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    checks = {"string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
              "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
              "null": lambda v: v is None, "object": lambda v: isinstance(v, dict)}
    if not any(checks[t](value) for t in types):
        return False
    return "enum" not in schema or value in schema["enum"]


def validate_answer(answer, schema: dict) -> dict:
    """The answer as {"summary", "fields", "success"}; ValueError (in plain words) when it does not match."""
    if not isinstance(answer, dict):
        raise ValueError("the answer is not a JSON object")
    props = schema["properties"]
    missing = [k for k in props if k not in answer]
    if missing:
        raise ValueError(f"the answer lacks {', '.join(missing)}")
    field_props = props["fields"]["properties"] if "fields" in props else {}
    fields = answer.get("fields", {})
    if not isinstance(fields, dict):
        raise ValueError("fields is not an object")
    for name, prop in field_props.items():
        if name not in fields:
            raise ValueError(f"the answer lacks the field {name}")
        if not _type_ok(fields[name], prop):
            raise ValueError(f"the field {name} has a value of the wrong type or not among its values")
    if "summary" in props and not isinstance(answer["summary"], str):
        raise ValueError("summary is not text")
    if "success" in props and not _type_ok(answer["success"], props["success"]):
        raise ValueError("success is not true, false or null")
    return {"summary": (answer.get("summary") or "").strip(),
            "fields": {n: fields[n] for n in field_props},
            "success": answer.get("success")}


def _transcript_lines(turns) -> list[str]:
    lines = []
    for t in turns:
        if t.role == CallTurn.Role.EVENT:
            lines.append(f"[{t.text}]")
        elif t.text:
            lines.append(f"{'Agent' if t.role == CallTurn.Role.AGENT else 'Caller'}: {t.text}")
    return lines


def _prompt(definition: dict, turns) -> tuple[str, str]:
    parts = ["You analyse a finished phone call between a company's voice agent and a caller. "
             "Answer only with the JSON object the schema describes. Use null for a field the call does not tell."]
    if definition["fields"]:
        parts.append("Fields:\n" + "\n".join(
            f"- {f['name']} ({f['type']}{': ' + ', '.join(f.get('values') or []) if f['type'] == 'enum' else ''})"
            f"{': ' + f['description'] if f.get('description') else ''}" for f in definition["fields"]))
    if definition["success"]:
        parts.append(f"Success criterion: {definition['success']}")
    transcript = "\n".join(_transcript_lines(turns))[-MAX_TRANSCRIPT_CHARS:] or "(no words were said)"
    return "\n\n".join(parts), "Transcript:\n" + transcript


# ---------------------------------------------------------------------------
# Vendors


def _setting(env_values: dict, name: str, default: str = "") -> str:
    return env_values.get(name) or default


def _environment_values(environment) -> dict:
    """Secrets over variables, for this task only (not kept anywhere)."""
    if environment is None:
        return {}
    values = {v.name: v.value for v in environment.variables.all()}
    values.update({s.name: s.value for s in environment.secrets.all()})
    return values


def provider_for(version, env_values: dict) -> str:
    if version.provider == version.Provider.SCRIPTED:
        return "rules"
    # A version that talks through a chat model is analysed by its chat vendor (calls.providers.chat.VENDORS).
    if version.provider in (version.Provider.OPENAI_CHAT, version.Provider.CASCADED) \
            and getattr(version, "chat_vendor", "") == "anthropic":
        return "anthropic"
    choice = (_setting(env_values, "ANALYSIS_PROVIDER") or getattr(settings, "ANALYSIS_PROVIDER", "")
              or "openai").strip().lower()
    return "anthropic" if choice == "anthropic" else "openai"


def _status_error(vendor: str, status: int) -> AnalysisError:
    if status == 429 or status >= 500:
        return TransientAnalysisError(f"{vendor} answered HTTP {status}; trying again later.")
    return PermanentAnalysisError(f"{vendor} refused the request (HTTP {status}): check the key, model and "
                                  "base URL in the environment.")


def _vendor_settings(env_values: dict, vendor: str, *, base_url: str, model: str) -> tuple[str, str, str]:
    """(API key, base URL, model) from the environment's <VENDOR>_API_KEY, _BASE_URL, _ANALYSIS_MODEL (else
    _CHAT_MODEL); `base_url` and `model` are the defaults. Raises PermanentAnalysisError."""
    from workspaces import outbound

    api_key = _setting(env_values, f"{vendor}_API_KEY")
    if not api_key:
        raise PermanentAnalysisError(f"The environment has no {vendor}_API_KEY secret.")
    base_url = _setting(env_values, f"{vendor}_BASE_URL", base_url).rstrip("/")
    refusal = outbound.url_refusal(base_url)
    if refusal:
        raise PermanentAnalysisError(f"{vendor}_BASE_URL cannot be used: {refusal}")
    model = _setting(env_values, f"{vendor}_ANALYSIS_MODEL") or _setting(env_values, f"{vendor}_CHAT_MODEL", model)
    return api_key, base_url, model


def _openai_answer(*, env_values: dict, system: str, user: str, schema: dict) -> tuple[str, str]:
    """(model, the answer's text). Raises AnalysisError."""
    import httpx

    from workspaces import outbound

    api_key, base_url, model = _vendor_settings(env_values, "OPENAI", base_url="https://api.openai.com/v1",
                                                model=DEFAULT_OPENAI_MODEL)
    body = {"model": model, "temperature": 0,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": "call_analysis", "strict": True, "schema": schema}}}
    try:
        with outbound.client(timeout=TIMEOUT_SECONDS) as http:
            response = http.post(f"{base_url}/chat/completions", json=body,
                                 headers={"Authorization": f"Bearer {api_key}"})
    except outbound.OutboundRefused as exc:
        raise PermanentAnalysisError(str(exc)) from None
    except httpx.TimeoutException:
        raise TransientAnalysisError("The model did not answer in time; trying again later.") from None
    except httpx.HTTPError as exc:
        raise TransientAnalysisError(f"Could not reach the model ({type(exc).__name__}); trying again later.") from None
    if response.status_code >= 400:
        raise _status_error("The model", response.status_code)
    try:
        message = response.json()["choices"][0]["message"]
    except (ValueError, KeyError, IndexError, TypeError):
        return f"openai:{model}", ""
    if message.get("refusal"):
        raise PermanentAnalysisError("The model refused to analyse this call.")
    return f"openai:{model}", message.get("content") or ""


def _anthropic_answer(*, env_values: dict, system: str, user: str, schema: dict) -> tuple[str, object]:
    """(model, the tool input as a dict). Raises AnalysisError."""
    import anthropic

    from workspaces import outbound

    api_key, base_url, model = _vendor_settings(env_values, "ANTHROPIC", base_url="https://api.anthropic.com",
                                                model=DEFAULT_ANTHROPIC_MODEL)
    try:
        outbound.host_check(base_url)  # the SDK opens its own connections: check where they go first
    except outbound.OutboundRefused as exc:
        raise PermanentAnalysisError(str(exc)) from None
    try:
        # The guard's httpx2 client: each connection goes to the address checked when it is made (no rebinding).
        client = anthropic.Anthropic(api_key=api_key, base_url=base_url, max_retries=0, timeout=TIMEOUT_SECONDS,
                                     http_client=outbound.client_httpx2(timeout=TIMEOUT_SECONDS))
        message = client.messages.create(
            model=model, max_tokens=2048, system=system,
            messages=[{"role": "user", "content": user}],
            tools=[{"name": TOOL_NAME, "description": "Record the analysis of the call.", "input_schema": schema}],
            tool_choice={"type": "tool", "name": TOOL_NAME},
        )
    except anthropic.APITimeoutError:
        raise TransientAnalysisError("The model did not answer in time; trying again later.") from None
    except anthropic.APIConnectionError:
        raise TransientAnalysisError("Could not reach the model; trying again later.") from None
    except anthropic.APIStatusError as exc:
        raise _status_error("The model", exc.status_code) from None
    for block in message.content:
        if getattr(block, "type", "") == "tool_use" and block.name == TOOL_NAME:
            return f"anthropic:{model}", block.input
    return f"anthropic:{model}", None


def _model_analysis(*, provider: str, env_values: dict, definition: dict, turns) -> tuple[str, dict]:
    schema = json_schema(definition)
    system, user = _prompt(definition, turns)
    problem = ""
    for _ in range(2):  # an invalid answer is asked for once more
        if provider == "anthropic":
            model, answer = _anthropic_answer(env_values=env_values, system=system, user=user, schema=schema)
        else:
            model, text = _openai_answer(env_values=env_values, system=system, user=user, schema=schema)
            try:
                answer = json.loads(text)
            except ValueError:
                problem = "the answer is not valid JSON"
                continue
        try:
            return model, validate_answer(answer, schema)
        except ValueError as exc:
            problem = str(exc)
    raise PermanentAnalysisError(f"The model's answer did not match the fields twice ({problem}).")


# ---------------------------------------------------------------------------
# Rule-based analysis (scripted versions)


def _words(text: str) -> str:
    return " " + re.sub(r"[^\w]+", " ", (text or "").lower()) + " "


def _keywords(field: dict) -> list[str]:
    words = [k.strip().lower() for k in (field.get("keywords") or []) if k.strip()]
    return words or [field["name"].replace("_", " ")]


def _rule_value(field: dict, caller_texts: list[str]):
    keywords = _keywords(field)
    if field["type"] == "enum":
        for text in caller_texts:
            for value in field.get("values") or []:
                if _words(value.replace("_", " ")).strip() and _words(value.replace("_", " ")) in _words(text):
                    return value
        return None
    matching = [t for t in caller_texts if any(_words(k) in _words(t) for k in keywords)]
    if field["type"] == "boolean":
        return bool(matching)
    if not matching:
        return None
    text = matching[0]
    low = text.lower()
    key = next(k for k in keywords if _words(k) in _words(text))
    after = text[low.find(key) + len(key):] if key in low else text
    if field["type"] == "number":  # the number nearest the keyword ("3 items", "items: 3")
        at = low.find(key) if key in low else 0
        numbers = list(re.finditer(r"(?<![\w-])-?\d+(?:[.,]\d+)?(?![\w-])", text))
        if not numbers:
            return None
        found = min(numbers, key=lambda m: min(abs(m.start() - at), abs(m.end() - at - len(key)))).group()
        found = found.replace(",", ".")
        return float(found) if "." in found else int(found)
    tokens = re.findall(r"[\w-]+", after)
    tokens = [t for t in tokens if t.lower() not in ("is", "was", "it", "my", "the", "a", "number", "s")]
    with_digit = [t for t in tokens if any(c.isdigit() for c in t)]
    return (with_digit or tokens or [None])[0]


NO_CALLER_INPUT = ("The caller said nothing and pressed no key: there is no evidence the call met the success "
                   "criterion, so it is not a success.")


def _caller_inputs(turns) -> list:
    """The caller's turns with words or key presses ("(pressed 1)"): the evidence a call can be judged on."""
    return [t for t in turns if t.role == CallTurn.Role.CALLER and (t.text or "").strip()]


def _short(text: str, limit: int = 60) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _rule_success(*, definition: dict, turns) -> tuple[bool | None, str]:
    """The rule-based verdict and the rule that decided it (shown with the verdict, sent as `success_rule`).

    No success without evidence: a call without a single caller input is never a success. The criterion's
    quoted phrases ("thanks") are the evidence looked for, in the caller's words and in what the agent said
    once the caller had spoken (never the greeting); a criterion without quoted phrases cannot be checked by
    rules, so the verdict stays untold."""
    criterion = definition["success"]
    if not criterion:
        return None, ""
    inputs = _caller_inputs(turns)
    if not inputs:
        return False, NO_CALLER_INPUT
    quoted = [q.strip() for q in re.findall(r"[\"“']([^\"”']+)[\"”']", criterion) if q.strip()]
    if not quoted:
        return None, ("Not told: rule-based analysis (scripted versions) checks quoted phrases only; put the words "
                      "that prove success in quotes, e.g. The caller says “thanks”.")
    first_input = inputs[0].seq
    for turn in turns:
        spoken_by_caller = turn.role == CallTurn.Role.CALLER
        after_caller = turn.role == CallTurn.Role.AGENT and turn.seq > first_input
        if not (spoken_by_caller or after_caller) or not turn.text:
            continue
        for phrase in quoted:
            if _words(phrase).strip() and _words(phrase) in _words(turn.text):
                who = "the caller" if spoken_by_caller else "the agent"
                return True, f"Rule: the criterion's phrase “{_short(phrase)}” was said by {who} (turn {turn.seq})."
    listed = ", ".join(f"“{_short(q, 40)}”" for q in quoted[:5])
    return False, f"Rule: none of the criterion's phrases ({listed}) was said after the caller spoke."


def _model_success(*, definition: dict, turns, success) -> tuple[bool | None, str]:
    """The model's verdict, held to the same evidence: a call without a caller input is never a success."""
    if definition["success"] and success is not None and not _caller_inputs(turns):
        return False, NO_CALLER_INPUT
    return success, ""


def _rule_analysis(*, definition: dict, turns, call: CallSession) -> dict:
    caller = [t.text for t in turns if t.role == CallTurn.Role.CALLER and t.text]
    agent = [t.text for t in turns if t.role == CallTurn.Role.AGENT and t.text]
    summary = ""
    if definition["summary"]:
        if caller:
            summary = f"The caller said: “{caller[0][:200]}”"
            if len(caller) > 1:
                summary += f" and, last: “{caller[-1][:200]}”"
            summary += "."
        else:
            summary = "The caller said nothing."
        if agent:
            summary += f" The agent's last words: “{agent[-1][:200]}”."
        summary += f" {len(caller) + len(agent)} turns."
    success, rule = _rule_success(definition=definition, turns=turns)
    return {"summary": summary, "fields": {f["name"]: _rule_value(f, caller) for f in definition["fields"]},
            "success": success, "success_rule": rule}


# ---------------------------------------------------------------------------
# Writes


def analysis_enqueue(*, call_session_id: int, force: bool = False) -> None:
    """Queue the analysis task once the current transaction commits."""
    from calls import tasks

    # robust: a broker hiccup must not break the end of a call (the error is logged).
    transaction.on_commit(lambda: tasks.call_analysis_compute.delay(call_session_id, force), robust=True)


def call_session_ended_analysis(*, call_session_id: int) -> None:
    """Called when a call ends: queue its analysis if its version asks for one (one indexed read)."""
    version_fields = (CallSession.objects.filter(pk=call_session_id, agent_version__isnull=False)
                      .values("agent_version__analysis_summary", "agent_version__analysis_fields",
                              "agent_version__analysis_success").first())
    if version_fields and (version_fields["agent_version__analysis_summary"]
                           or version_fields["agent_version__analysis_fields"]
                           or (version_fields["agent_version__analysis_success"] or "").strip()):
        analysis_enqueue(call_session_id=call_session_id)


def _definition_version(call: CallSession, *, force: bool):
    """The call's own version; "Analyse again" (force) uses the agent's newest definition instead: the draft for a
    call of the draft, the latest published version for a call of a published one."""
    version = call.agent_version
    if force and version.is_published and version.agent.latest_version_id:
        return version.agent.latest_version
    return version


def _claim(*, call: CallSession, definition: dict, label: str, force: bool) -> CallAnalysis | None:
    """The call's analysis row, marked pending for this run; None when it is already finished (and not forced)."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                analysis, _ = CallAnalysis.objects.get_or_create(call_session=call)
        except IntegrityError:  # created by a concurrent run in the meantime
            pass
        analysis = CallAnalysis.objects.select_for_update().get(call_session=call)
        if analysis.status in (CallAnalysis.Status.DONE, CallAnalysis.Status.FAILED) and not force:
            return None
        analysis.status = CallAnalysis.Status.PENDING
        analysis.definition, analysis.definition_label = definition, label
        analysis.attempts += 1
        analysis.save(update_fields=["status", "definition", "definition_label", "attempts", "updated_at"])
        return analysis


def _save_result(analysis: CallAnalysis, *, status: str, result: dict | None = None, reason: str = "",
                 model_used: str = "") -> CallAnalysis:
    """THE single place an analysis is finished; a finished one sends `call.analyzed` (same transaction)."""
    with transaction.atomic():
        analysis.status = status
        analysis.reason = reason[:255]
        if model_used:
            analysis.model_used = model_used[:120]
        if result is not None:
            analysis.summary = result["summary"]
            analysis.fields = result["fields"]
            analysis.success = result["success"]
            analysis.analysed_at = timezone.now()
        analysis.save(update_fields=["status", "reason", "model_used", "summary", "fields", "success",
                                     "analysed_at", "updated_at"])
        if status == CallAnalysis.Status.DONE:
            session = CallSession.objects.select_related("agent_version").get(pk=analysis.call_session_id)
            webhook_services.call_event_record(session=session, type=EventType.CALL_ANALYZED, analysis={
                "summary": analysis.summary, "fields": analysis.fields, "success": analysis.success,
                "success_rule": analysis.reason,  # what decided the verdict (rules, or the evidence check)
                "definition": analysis.definition_label, "model": analysis.model_used,
            })
    return analysis


def call_analysis_compute(*, call_session_id: int, force: bool = False,
                          final_attempt: bool = True) -> CallAnalysis | None:
    """Compute (or, with `force`, recompute) the call's analysis. Raises TransientAnalysisError when a vendor
    error is worth retrying and this is not the `final_attempt` (the task retries); records everything else."""
    call = (CallSession.objects.select_related("agent_version__agent__latest_version", "environment")
            .filter(pk=call_session_id).first())
    if call is None or call.agent_version is None:
        return None
    version = _definition_version(call, force=force)
    definition = analysis_definition(version)
    if not analysis_wanted(definition) and not force:
        return None
    analysis = _claim(call=call, definition=definition, label=version.label, force=force)
    if analysis is None:
        return CallAnalysis.objects.filter(call_session=call).first()
    if not analysis_wanted(definition):  # forced, but the agent no longer asks for anything
        return _save_result(analysis, status=CallAnalysis.Status.DONE, model_used="none",
                            result={"summary": "", "fields": {}, "success": None},
                            reason="The agent's version asks for no post-call analysis.")
    turns = list(CallTurn.objects.filter(call_session=call).order_by("seq"))
    env_values = _environment_values(call.environment)
    provider = provider_for(call.agent_version, env_values)
    try:
        if provider == "rules":
            result = _rule_analysis(definition=definition, turns=turns, call=call)
            return _save_result(analysis, status=CallAnalysis.Status.DONE, model_used="rules", result=result,
                                reason=result["success_rule"])
        model, result = _model_analysis(provider=provider, env_values=env_values, definition=definition,
                                        turns=turns)
    except TransientAnalysisError as exc:
        logger.warning("call analysis failed, transient", extra={"call_session_id": call.pk, "provider": provider,
                                                                  "final": final_attempt})
        if not final_attempt:
            CallAnalysis.objects.filter(pk=analysis.pk).update(reason=exc.message[:255], updated_at=timezone.now())
            raise
        return _save_result(analysis, status=CallAnalysis.Status.FAILED, reason=exc.message)
    except PermanentAnalysisError as exc:
        logger.warning("call analysis failed", extra={"call_session_id": call.pk, "provider": provider})
        return _save_result(analysis, status=CallAnalysis.Status.FAILED, reason=exc.message)
    except Exception as exc:  # noqa: BLE001 - a bug must not leave the analysis "Analysing" forever
        logger.exception("call analysis crashed", extra={"call_session_id": call.pk, "provider": provider})
        return _save_result(analysis, status=CallAnalysis.Status.FAILED,
                            reason=f"The analysis could not run ({type(exc).__name__}).")
    result["success"], rule = _model_success(definition=definition, turns=turns, success=result["success"])
    return _save_result(analysis, status=CallAnalysis.Status.DONE, result=result, model_used=model, reason=rule)


@transaction.atomic
def call_analysis_request(*, call: CallSession) -> CallAnalysis:
    """"Analyse again": mark the call's analysis pending and queue a forced run (the page shows "Analysing")."""
    try:
        with transaction.atomic():
            analysis, _ = CallAnalysis.objects.get_or_create(call_session=call)
    except IntegrityError:
        analysis = CallAnalysis.objects.get(call_session=call)
    CallAnalysis.objects.filter(pk=analysis.pk).update(status=CallAnalysis.Status.PENDING, reason="",
                                                       updated_at=timezone.now())
    analysis_enqueue(call_session_id=call.pk, force=True)
    return analysis
