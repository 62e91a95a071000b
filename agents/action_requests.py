"""API actions at run time: the tool schema the model sees, and one request made for the model.

Used by the live call's own task (calls.engine) and by Studio's "Try" button. No database access here:
the caller passes the action (an `ApiAction` or an `ApiActionSpec`), the environment's variables, its secret
values (only to redact them from answers) and its auth connectors (`AuthSpec`, which hold their secret).

Templates: `{name}` is a parameter the model fills when the action declares one of that name; otherwise a
name in capitals (`{API_BASE}`) is one of the environment's variables. `{{` and `}}` stand for braces. In the
JSON body a string that is exactly `"{param}"` takes the parameter's typed value (number, boolean, ...).
Parameter values put in the URL are percent-encoded; variables are put in as written.

Every request (the action's URL and an OAuth2 token URL) goes through `workspaces.outbound.async_client`.
Secrets, tokens and auth headers never reach the result text, the error text or a log line.
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx

from workspaces import outbound

logger = logging.getLogger("agents.action_requests")

PARAMETER_TYPES = ("string", "number", "integer", "boolean", "enum")
TEMPLATE_RE = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
PARAM_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
VARIABLE_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")
REDACTED = "[redacted]"
CREDENTIAL_HEADERS = {"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key", "x-auth-token"}
TOKEN_EXPIRY_MARGIN = 30.0  # seconds: a token this close to expiring is fetched again
DEFAULT_TOKEN_LIFETIME = 3600.0


class TemplateError(ValueError):
    """A template or parameter definition is malformed (message in plain words, for the form)."""


class ArgumentError(ValueError):
    """The model's arguments do not fit the action's parameters (message goes back to the model)."""


# ---------------------------------------------------------------------------
# What the engine holds per call (no database rows at run time)


@dataclass(frozen=True)
class ApiActionSpec:
    name: str
    description: str = ""
    wait_message: str = ""
    method: str = "GET"
    url: str = ""
    headers: dict = field(default_factory=dict)
    query: dict = field(default_factory=dict)
    body: object = None
    parameters: tuple = ()
    auth_connector: str = ""
    timeout_seconds: float = 5.0
    max_response_bytes: int = 65536
    result_pointer: str = ""
    result_max_chars: int = 2000

    @classmethod
    def from_model(cls, action) -> "ApiActionSpec":
        return cls(
            name=action.name, description=action.description, wait_message=action.wait_message,
            method=action.method, url=action.url, headers=dict(action.headers or {}),
            query=dict(action.query or {}), body=action.body, parameters=tuple(action.parameters or ()),
            auth_connector=action.auth_connector, timeout_seconds=float(action.timeout_seconds),
            max_response_bytes=int(action.max_response_bytes), result_pointer=action.result_pointer,
            result_max_chars=int(action.result_max_chars),
        )


@dataclass(frozen=True)
class AuthSpec:
    name: str
    kind: str
    config: dict = field(default_factory=dict)
    secret: str = field(default="", repr=False)

    @classmethod
    def from_model(cls, connector) -> "AuthSpec":
        return cls(name=connector.name, kind=connector.kind, config=dict(connector.config or {}),
                   secret=connector.secret or "")


@dataclass(frozen=True)
class ActionOutcome:
    ok: bool
    status_code: int | None = None
    duration_ms: int = 0
    result_text: str = ""
    error: str = ""

    def model_text(self) -> str:
        """What goes back to the model as the tool result."""
        return self.result_text if self.ok else f"The action failed: {self.error}"


# ---------------------------------------------------------------------------
# Templates and parameters (also used by the form to refuse bad input)


def template_names(text: str) -> list[str]:
    """The `{names}` a template string uses. Raises TemplateError on a stray brace or an invalid name."""
    names = []
    pos = 0
    for m in TEMPLATE_RE.finditer(text):
        between = text[pos:m.start()]
        if "{" in between or "}" in between:
            raise TemplateError(f"Unbalanced brace in {text!r}: write {{{{ or }}}} for a literal brace.")
        pos = m.end()
        if m.group(1) is None:
            continue
        name = m.group(1).strip()
        if not (PARAM_NAME_RE.match(name) or VARIABLE_NAME_RE.match(name)):
            raise TemplateError(f"{{{m.group(1)}}} is not a parameter or variable name.")
        names.append(name)
    rest = text[pos:]
    if "{" in rest or "}" in rest:
        raise TemplateError(f"Unbalanced brace in {text!r}: write {{{{ or }}}} for a literal brace.")
    return names


def _strings(value):
    """Every string in a JSON template (keys and values)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def validate_parameters(parameters) -> list[dict]:
    """The parameter list, normalised; TemplateError names what is wrong."""
    if parameters in (None, ""):
        return []
    if not isinstance(parameters, list):
        raise TemplateError('Parameters must be a list: [{"name": "order_id", "type": "string", "required": true}].')
    out, seen = [], set()
    for i, p in enumerate(parameters, 1):
        if not isinstance(p, dict):
            raise TemplateError(f"Parameter {i} is not an object with a name and a type.")
        unknown = set(p) - {"name", "type", "required", "description", "enum"}
        if unknown:
            raise TemplateError(f"Parameter {i} has unknown keys: {', '.join(sorted(map(str, unknown)))}.")
        name = p.get("name")
        if not isinstance(name, str) or not PARAM_NAME_RE.match(name):
            raise TemplateError(f"Parameter {i}: the name must be lowercase letters, digits and underscores, "
                                "starting with a letter.")
        if name in seen:
            raise TemplateError(f"Parameter {name} is defined twice.")
        seen.add(name)
        kind = p.get("type", "string")
        if kind not in PARAMETER_TYPES:
            raise TemplateError(f"Parameter {name}: the type must be one of {', '.join(PARAMETER_TYPES)}.")
        entry = {"name": name, "type": kind, "required": bool(p.get("required", False)),
                 "description": str(p.get("description") or "")}
        if kind == "enum":
            values = p.get("enum")
            if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
                raise TemplateError(f"Parameter {name}: an enum needs a list of values (strings).")
            entry["enum"] = list(dict.fromkeys(values))
        elif "enum" in p:
            raise TemplateError(f"Parameter {name}: only the enum type takes values.")
        out.append(entry)
    return out


def template_problems(*, url: str, headers, query, body, parameters) -> dict[str, str]:
    """Field → plain-words problem, for the form (empty when the templates are fine)."""
    problems: dict[str, str] = {}
    try:
        params = {p["name"] for p in validate_parameters(parameters)}
    except TemplateError as exc:
        problems["parameters"] = str(exc)
        params = set()
    for field_name, value in (("url", url), ("headers", headers), ("query", query), ("body", body)):
        if field_name in ("headers", "query") and value not in (None, "") and not isinstance(value, dict):
            problems[field_name] = "Enter a JSON object of names to values."
            continue
        if field_name == "headers" and isinstance(value, dict):
            bad = [k for k, v in value.items() if not isinstance(v, str) or "\n" in v or "\r" in v]
            if bad:
                problems[field_name] = f"Header values must be one-line strings: {', '.join(bad)}."
                continue
            credentials = [k for k in value if str(k).lower() in CREDENTIAL_HEADERS]
            if credentials:
                problems[field_name] = (f"{', '.join(credentials)}: credentials go in an auth connector (stored "
                                        "encrypted, never shown), not in the headers.")
                continue
        try:
            for text in _strings(value):
                for name in template_names(text):
                    if PARAM_NAME_RE.match(name) and name not in params:
                        raise TemplateError(f"{{{name}}} is not one of the action's parameters.")
        except TemplateError as exc:
            problems[field_name] = str(exc)
    return problems


def template_variables(action) -> list[str]:
    """The environment variables an action's templates use (for readiness)."""
    names: list[str] = []
    for value in (action.url, action.headers, action.query, action.body):
        for text in _strings(value):
            try:
                names += [n for n in template_names(text) if VARIABLE_NAME_RE.match(n)]
            except TemplateError:
                continue
    return sorted(set(names))


def action_requirements(actions) -> dict:
    """{"auth_connectors": [...], "variables": [...]} the environment must have for these actions."""
    auth = sorted({a.auth_connector for a in actions if a.auth_connector})
    variables = sorted({n for a in actions for n in template_variables(a)})
    return {"auth_connectors": auth, "variables": variables}


def action_tool_schema(action) -> dict:
    """The JSON schema of the action's parameters (the tool's `parameters`)."""
    properties, required = {}, []
    for p in validate_parameters(list(action.parameters or ())):
        kind = p["type"]
        prop: dict = {"type": "string", "enum": p["enum"]} if kind == "enum" else {"type": kind}
        if p["description"]:
            prop["description"] = p["description"]
        properties[p["name"]] = prop
        if p["required"]:
            required.append(p["name"])
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def validate_arguments(action, arguments) -> dict:
    """The model's arguments checked against the parameters; ArgumentError says what is wrong."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            raise ArgumentError("The arguments are not valid JSON.") from None
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise ArgumentError("The arguments must be a JSON object.")
    params = {p["name"]: p for p in validate_parameters(list(action.parameters or ()))}
    unknown = sorted(set(arguments) - set(params))
    if unknown:
        raise ArgumentError(f"Unknown parameter {', '.join(map(str, unknown))}; the parameters are: "
                            f"{', '.join(params) or 'none'}.")
    out = {}
    for name, p in params.items():
        if name not in arguments or arguments[name] is None:
            if p["required"]:
                raise ArgumentError(f"The parameter {name} is required.")
            continue
        value, kind = arguments[name], p["type"]
        if kind == "string" and not isinstance(value, str):
            value = str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
            if not isinstance(value, str):
                raise ArgumentError(f"The parameter {name} must be a string.")
        elif kind == "number" and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ArgumentError(f"The parameter {name} must be a number.")
        elif kind == "integer":
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ArgumentError(f"The parameter {name} must be a whole number.")
        elif kind == "boolean" and not isinstance(value, bool):
            raise ArgumentError(f"The parameter {name} must be true or false.")
        elif kind == "enum" and value not in p["enum"]:
            raise ArgumentError(f"The parameter {name} must be one of: {', '.join(p['enum'])}.")
        out[name] = value
    return out


def _as_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _render(text: str, arguments: dict, variables: dict, *, encode: bool = False) -> str:
    def sub(m):
        token = m.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = m.group(1).strip()
        if name in arguments:
            value = _as_text(arguments[name])
            return quote(value, safe="") if encode else value
        if PARAM_NAME_RE.match(name):
            return ""  # an optional parameter the model left out
        if name not in variables:
            raise ArgumentError(f"The environment has no variable {name}.")
        return str(variables[name])
    return TEMPLATE_RE.sub(sub, text)


def _render_json(value, arguments: dict, variables: dict):
    if isinstance(value, str):
        m = TEMPLATE_RE.fullmatch(value)
        if m and m.group(1) is not None and m.group(1).strip() in arguments:
            return arguments[m.group(1).strip()]  # keeps the parameter's JSON type
        if m and m.group(1) is not None and PARAM_NAME_RE.match(m.group(1).strip()):
            return None
        return _render(value, arguments, variables)
    if isinstance(value, dict):
        return {_render(str(k), arguments, variables): _render_json(v, arguments, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_json(v, arguments, variables) for v in value]
    return value


# ---------------------------------------------------------------------------
# Results


def json_pointer(document, pointer: str):
    """RFC 6901. Raises KeyError naming the pointer when the document has nothing there."""
    if not pointer:
        return document
    current = document
    for raw in pointer.lstrip("/").split("/") if pointer != "/" else [""]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            raise KeyError(pointer)
    return current


def redact(text: str, values) -> str:
    for value in sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def result_text(value) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# ---------------------------------------------------------------------------
# Auth


class _AuthFailed(Exception):
    pass


async def _oauth2_token(http: httpx.AsyncClient, auth: AuthSpec, token_cache: dict, *, fresh: bool) -> str:
    key = ("oauth2", auth.name, auth.config.get("token_url", ""), auth.config.get("client_id", ""))
    cached = token_cache.get(key)
    if cached and not fresh and cached[1] > time.monotonic():
        return cached[0]
    token_url = auth.config.get("token_url", "")
    reason = outbound.url_refusal(token_url) if token_url else "The auth connector has no token URL."
    if reason:
        raise _AuthFailed(f"the token URL of {auth.name} is refused: {reason}")
    data = {"grant_type": "client_credentials", "client_id": auth.config.get("client_id", ""),
            "client_secret": auth.secret}
    if auth.config.get("scope"):
        data["scope"] = auth.config["scope"]
    response = await http.post(token_url, data=data, headers={"Accept": "application/json"})
    if response.status_code != 200:
        raise _AuthFailed(f"the token endpoint of {auth.name} answered with status {response.status_code}")
    try:
        payload = response.json()
        token = payload["access_token"]
        lifetime = float(payload.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
    except (ValueError, KeyError, TypeError):
        raise _AuthFailed(f"the token endpoint of {auth.name} did not answer with an access token") from None
    if not isinstance(token, str) or not token:
        raise _AuthFailed(f"the token endpoint of {auth.name} did not answer with an access token")
    token_cache[key] = (token, time.monotonic() + max(0.0, lifetime - TOKEN_EXPIRY_MARGIN))
    return token


async def _auth_headers(http, auth: AuthSpec | None, token_cache: dict, *, fresh: bool = False) -> dict:
    if auth is None:
        return {}
    if auth.kind == "api_key_header":
        return {auth.config.get("header_name") or "X-API-Key": auth.secret}
    if auth.kind == "bearer":
        return {"Authorization": f"Bearer {auth.secret}"}
    if auth.kind == "basic":
        pair = f"{auth.config.get('username', '')}:{auth.secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
    if auth.kind == "oauth2_client_credentials":
        return {"Authorization": f"Bearer {await _oauth2_token(http, auth, token_cache, fresh=fresh)}"}
    raise _AuthFailed(f"the auth connector {auth.name} is of an unknown kind")


def _secret_values(secrets: dict, auth: AuthSpec | None, token_cache: dict) -> list[str]:
    values = [str(v) for v in (secrets or {}).values()]
    if auth is not None:
        values.append(auth.secret)
    values += [entry[0] for entry in token_cache.values() if isinstance(entry, tuple) and entry]
    return values


# ---------------------------------------------------------------------------
# The request


async def _read_capped(response: httpx.Response, cap: int) -> bytes | None:
    """The body, or None once it is larger than `cap` (reading stops there)."""
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _send_following_redirects(http: httpx.AsyncClient, request: httpx.Request, *,
                                    auth_names: set[str]) -> httpx.Response:
    """Send (streamed), following at most MAX_REDIRECTS redirects; every hop goes through the client's guard.
    A hop to another origin does not carry our auth headers (httpx itself drops only Authorization)."""
    origin = (request.url.scheme, request.url.netloc)
    for _ in range(outbound.MAX_REDIRECTS + 1):
        response = await http.send(request, stream=True, follow_redirects=False)
        following = response.next_request
        if following is None:
            return response
        await response.aclose()
        if (following.url.scheme, following.url.netloc) != origin:
            for name in auth_names:
                following.headers.pop(name, None)
        request = following
    raise httpx.TooManyRedirects("Exceeded maximum allowed redirects.", request=request)


async def _request(http, action, arguments, variables, auth, token_cache,
                   sent_auth: list) -> tuple[int, bytes | None, dict]:
    url = _render(action.url, arguments, variables, encode=True)
    headers = {_render(str(k), arguments, variables): _render(str(v), arguments, variables)
               for k, v in (action.headers or {}).items()}
    if any("\n" in v or "\r" in v for v in headers.values()):
        raise ArgumentError("A header value would contain a line break.")
    query = {}
    for k, v in (action.query or {}).items():
        rendered = _render_json(v, arguments, variables) if isinstance(v, str) else v
        if rendered not in (None, ""):
            query[_render(str(k), arguments, variables)] = _as_text(rendered)
    kwargs: dict = {"params": query or None, "headers": headers}
    if action.body is not None and action.method in ("POST", "PUT", "PATCH", "DELETE"):
        kwargs["json"] = _render_json(action.body, arguments, variables)
    reason = outbound.url_refusal(url)
    if reason:
        raise outbound.OutboundRefused(reason)
    for attempt in (1, 2):
        extra = await _auth_headers(http, auth, token_cache, fresh=attempt == 2)
        sent_auth += [v for v in extra.values()] + [v.split(" ", 1)[-1] for v in extra.values()]
        request = http.build_request(action.method, url, **{**kwargs, "headers": {**headers, **extra}})
        response = await _send_following_redirects(http, request, auth_names=set(extra))
        try:
            if response.status_code == 401 and attempt == 1 and auth is not None \
                    and auth.kind == "oauth2_client_credentials":
                continue  # the token may have been revoked: fetch a new one, once
            if response.status_code >= 400:
                return response.status_code, b"", dict(response.headers)
            body = await _read_capped(response, int(action.max_response_bytes))
            return response.status_code, body, dict(response.headers)
        finally:
            await response.aclose()
    raise AssertionError("unreachable")


async def action_perform(*, action, arguments, secrets: dict, variables: dict, auth_connectors: dict,
                         token_cache: dict, http: httpx.AsyncClient | None = None) -> ActionOutcome:
    """Run one API action for the model. Never raises for anything the API, the network or the model did.

    `auth_connectors`: name → AuthSpec. `token_cache`: a dict the caller keeps for the call (OAuth2 tokens).
    `http`: an `outbound.async_client` the caller keeps for the call (one is made, and closed, otherwise)."""
    started = time.perf_counter()
    auth = None
    status = None
    sent_auth: list[str] = []  # the auth header values sent (a basic-auth header encodes the password)

    def done(ok: bool, text: str = "", error: str = "") -> ActionOutcome:
        hidden = _secret_values(secrets, auth, token_cache) + sent_auth
        return ActionOutcome(ok=ok, status_code=status, duration_ms=int((time.perf_counter() - started) * 1000),
                             result_text=redact(text, hidden), error=redact(error, hidden))

    try:
        arguments = validate_arguments(action, arguments)
    except ArgumentError as exc:
        return done(False, error=str(exc))
    except TemplateError as exc:  # a version edited by hand (admin, shell): the form refuses these
        return done(False, error=f"The action is misconfigured: {exc}")
    if action.auth_connector:
        auth = (auth_connectors or {}).get(action.auth_connector)
        if auth is None:
            return done(False, error=f"The environment has no auth connector named {action.auth_connector}.")
    own_client = http is None
    if own_client:
        http = outbound.async_client(timeout=float(action.timeout_seconds), follow_redirects=True)
    try:
        async with asyncio.timeout(float(action.timeout_seconds)):
            status, body, _ = await _request(http, action, arguments, variables or {}, auth,
                                             token_cache, sent_auth)
    except TimeoutError:
        return done(False, error=f"The API did not answer within {action.timeout_seconds:g} seconds.")
    except ArgumentError as exc:
        return done(False, error=str(exc))
    except _AuthFailed as exc:
        return done(False, error=f"Could not authenticate: {exc}.")
    except outbound.OutboundRefused as exc:
        return done(False, error=f"The request was refused: {exc}")
    except httpx.TooManyRedirects:
        return done(False, error=f"The API redirected more than {outbound.MAX_REDIRECTS} times.")
    except httpx.InvalidURL:  # e.g. a redirect to a URL the client cannot parse
        return done(False, error="The request was refused: the URL is not valid.")
    except httpx.TimeoutException:
        return done(False, error=f"The API did not answer within {action.timeout_seconds:g} seconds.")
    except httpx.HTTPError as exc:
        return done(False, error=f"Could not reach the API ({type(exc).__name__}).")
    finally:
        if own_client:
            await http.aclose()
    if status >= 400:
        return done(False, error=f"The API answered with status {status}.")
    if body is None:
        return done(False, error=f"The answer was larger than {int(action.max_response_bytes) // 1024} KB.")
    if not body.strip():
        return done(True, text="OK (the API sent no content).")
    try:
        document = json.loads(body)
    except ValueError:
        return done(False, error="The API did not answer with valid JSON.")
    try:
        value = json_pointer(document, action.result_pointer)
    except KeyError:
        return done(False, error=f"The answer has nothing at {action.result_pointer}.")
    return done(True, text=truncate(result_text(value), int(action.result_max_chars)))
