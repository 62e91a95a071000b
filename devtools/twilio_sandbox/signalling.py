"""The Voice JS SDK's signalling, served by the sandbox: browser calls work offline.

The SDK (`@twilio/voice-sdk`, lib/twilio/pstream.ts) speaks JSON messages `{"type", "version", "payload"}` over a
websocket to `wss://<chunderw>/signal`. The app passes the Device `chunderw: "<host>:<port>"` of this server when
it runs against the sandbox (never in production). TLS is required by the SDK (it builds `wss://` URLs), so the
server presents a self-signed certificate: tests' Chromium ignores certificate errors; a person opens
`https://<host>:<port>/` once and accepts it.

What it answers, as Twilio does:

- `listen` (the access token): verified against the account's API key secret (HS256, `iss` = key, `sub` =
  account), its expiry, its voice grant and its outgoing TwiML app (must belong to the account). Refusals are
  `error` messages with the SDK's codes: 20101 invalid token, 20104 expired, 20151 no voice grant or identity.
  Accepted: `connected` with the identity and the token's remaining ttl.
- `register` (`media.audio` true/false): `ready` / `offline`; a registered identity can be rung.
- `invite` (an outgoing call, `OutgoingCall`): the TwiML app's voice URL is requested signed with the auth
  token, with `From=client:<identity>`, `ApplicationSid` and the SDK's params, and the TwiML is followed (phone.py's
  `SimulatedCall`): `<Say>` is spoken into the call, `<Dial><Number>` rings a sandbox person (`PEOPLE`): it
  answers with a greeting, or is busy, or never answers; the leg's status callbacks, the `<Dial action>` and the
  call's status callback follow. `ringing` then `answer` (SDP from the sandbox's WebRTC peer, media.py) go to the
  browser when the far side answers (answerOnBridge); `hangup` when the call ends on the sandbox's side.
  Dialling one of the sandbox's own numbers places its inbound call (`RingingCall`), whose `<Dial><Client>` can
  ring another browser: the two peers are bridged (media.py `Peer.bridge`); a `<Connect><Stream>` there (an
  agent) gets the browser's voice as μ-law frames and its audio is played to the browser.
- Incoming: a simulated call (`RingingCall`) whose TwiML `<Dial><Client>` names a registered identity sends that
  browser an `invite` (offer SDP, `parameters` with CallSid/From/To); `answer` bridges the caller (who speaks
  the simulated call's sentence), `reject` is busy, no answer before the `<Dial timeout>` sends `cancel`;
  then the `<Dial action>` (voicemail for the dialer's TwiML).
- `dtmf` (keys the far side receives, in the call's events), `hangup`, `reject`, `message` (acknowledged).
- The dialled leg of a browser call is a call of its own (`Calls/<leg>.json`): redirected while bridged (a
  voicemail drop: `<Play>` then `<Hangup>`), it leaves the `<Dial>`: its `<Play>` URL is fetched (`leg_play` event,
  what a machine at `…0188` would record), the parent's `<Dial>` completes and its action runs.
- A REST update of the dialled person's leg (its CallSid is a sandbox call while it talks) ends the parent's
  `<Dial>` (its action is requested, as Twilio does) and the person goes on with that TwiML, e.g. into a
  conference, where the browser's peer joins the conference's audio (`BrowserEndpoint`).
- A REST update of the call while a leg is bridged (`Calls/<sid>.json` with `Twiml=` or `Status=completed`) ends
  the `<Dial>` (no action request) and the new TwiML runs, or the call ends and the browser gets `hangup`.
"""
from __future__ import annotations

import json
import queue
import secrets
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

from devtools.twilio_sandbox.media import MediaLoop, Peer, tone_pcm
from devtools.twilio_sandbox.phone import SimulatedCall

PSTREAM_VERSION = "1.6"
MAX_TOKEN_LIFE = 24 * 3600  # Twilio refuses tokens valid for longer (20104 too)
GREETING = "Hello, you have reached the sandbox. Press a key, please."
VOICEMAIL_GREETING = "Please leave a message after the tone."
RING_SECONDS = 1.0  # a sandbox person picks up after this long
MAX_ANSWERED_SECONDS = 120.0

# A sandbox number's last four digits decide how the person at it behaves; any other number answers.
PEOPLE = {"0186": "busy", "0187": "no-answer", "0188": "voicemail"}


def person_for(number: str) -> str:
    """"answer", "busy", "no-answer" or "voicemail" for a dialled number (see PEOPLE)."""
    return PEOPLE.get(number[-4:], "answer")


class TokenRefused(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def token_verify(sandbox, token: str, *, now: float | None = None) -> dict:
    """The token's claims if Twilio would accept it for voice, else TokenRefused with the SDK's error code."""
    import jwt

    now = time.time() if now is None else now
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise TokenRefused(20101, "Invalid Access Token") from None
    account_sid, key_sid = claims.get("sub", ""), claims.get("iss", "")
    with sandbox.lock:
        account = sandbox.state["accounts"].get(account_sid)
        key = sandbox.state["keys"].get(account_sid, {}).get(key_sid)
        secret = key.get("secret") if key and not key.get("deleted") else None
    if not account or account.get("status") != "active" or not secret:
        raise TokenRefused(20101, "Invalid Access Token: unknown API key or account")
    try:
        jwt.decode(token, secret, algorithms=["HS256"], options={"verify_exp": False, "verify_nbf": False})
    except jwt.PyJWTError:
        raise TokenRefused(20101, "Invalid Access Token: signature validation failed") from None
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or exp <= now or exp - now > MAX_TOKEN_LIFE:
        raise TokenRefused(20104, "Access Token expired or expiration date invalid")
    grants = claims.get("grants") or {}
    voice = grants.get("voice")
    if not isinstance(voice, dict):
        raise TokenRefused(20151, "Authentication Failed: the token has no voice grant")
    if not grants.get("identity"):
        raise TokenRefused(20151, "Authentication Failed: the token has no identity")
    app_sid = (voice.get("outgoing") or {}).get("application_sid")
    if app_sid:
        with sandbox.lock:
            known = app_sid in sandbox.state["applications"].get(account_sid, {})
        if not known:
            raise TokenRefused(20101, f"Invalid Access Token: application {app_sid} is not in account {account_sid}")
    return claims


def _self_signed(folder: Path, host: str) -> tuple[str, str]:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Twilio sandbox signalling")])
    alt = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    try:
        alt.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        alt.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(list(dict.fromkeys(alt))), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


class SignallingServer:
    """The websocket server (TLS) on its own port; `host` is the Device's `chunderw` value."""

    def __init__(self, sandbox, host: str = "127.0.0.1", port: int = 0):
        self.sandbox, self.bind_host, self.port = sandbox, host, port
        self.media: MediaLoop | None = None
        self.clients: list[Client] = []
        self.refusals: list[dict] = []  # tokens refused (code, message), for tests
        self._server = None
        self._folder = None

    @property
    def host(self) -> str:
        return f"{self.bind_host}:{self.port}"

    def start(self) -> "SignallingServer":
        from websockets.asyncio.server import serve

        self.media = MediaLoop()
        self._folder = tempfile.TemporaryDirectory(prefix="sandbox-signalling-")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*_self_signed(Path(self._folder.name), self.bind_host))

        def process_request(connection, request):
            if request.headers.get("Upgrade", "").lower() != "websocket":  # a person accepting the certificate
                return connection.respond(200, "Twilio sandbox: Voice SDK signalling (wss://…/signal).\n")
            return None

        async def begin():
            return await serve(self._handler, self.bind_host, self.port, ssl=context,
                               process_request=process_request, max_size=2 ** 20, ping_interval=None)

        self._server = self.media.call(begin())
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._server is not None and self.media is not None:
            server = self._server

            async def end():
                server.close()
                await server.wait_closed()

            try:
                self.media.call(end(), timeout=5)
            except Exception:  # noqa: BLE001 - stopping anyway
                pass
            self.media.stop()
        self._server = None
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None

    async def _handler(self, ws) -> None:
        client = Client(self, ws)
        self.clients.append(client)
        try:
            async for raw in ws:
                try:
                    message = json.loads(raw)
                except ValueError:
                    continue
                client.handle(message.get("type", ""), message.get("payload") or {})
        except Exception:  # noqa: BLE001 - the browser went away
            pass
        finally:
            client.gone()
            if client in self.clients:
                self.clients.remove(client)

    def registered(self, account_sid: str, identity: str) -> list["Client"]:
        return [c for c in list(self.clients)
                if c.registered and c.account_sid == account_sid and c.identity == identity]


class Client:
    """One SDK websocket: its token, its registration and its calls (by CallSid and by the SDK's TJ id)."""

    def __init__(self, server: SignallingServer, ws):
        self.server, self.ws = server, ws
        self.claims: dict | None = None
        self.registered = False
        self.calls: dict[str, object] = {}

    @property
    def account_sid(self) -> str:
        return (self.claims or {}).get("sub", "")

    @property
    def identity(self) -> str:
        return ((self.claims or {}).get("grants") or {}).get("identity", "")

    def send(self, type_: str, payload: dict) -> None:
        """Thread-safe: queue a message to the browser."""
        text = json.dumps({"type": type_, "version": PSTREAM_VERSION, "payload": payload})
        loop = self.server.media.loop

        async def go():
            try:
                await self.ws.send(text)
            except Exception:  # noqa: BLE001 - closed
                pass

        loop.call_soon_threadsafe(lambda: loop.create_task(go()))

    def _error(self, code: int, message: str, **extra) -> None:
        self.send("error", {"error": {"code": code, "message": message}, **extra})

    def handle(self, type_: str, payload: dict) -> None:  # runs on the loop: anything slow goes to a thread
        if type_ == "listen":
            try:
                self.claims = token_verify(self.server.sandbox, payload.get("token", ""))
            except TokenRefused as exc:
                self.claims, self.registered = None, False
                self.server.refusals.append({"code": exc.code, "message": exc.message})
                self._error(exc.code, exc.message)
                return
            self.send("connected", {"region": "sandbox", "edge": "sandbox", "home": "sandbox",
                                    "token": {"identity": self.identity, "ttl": int(self.claims["exp"] - time.time())}})
            return
        if self.claims is None:
            self._error(31204, "JWT token is invalid or missing: send listen with a valid token first")
            return
        if type_ == "register":
            audio = bool((payload.get("media") or {}).get("audio"))
            incoming = ((self.claims.get("grants") or {}).get("voice") or {}).get("incoming", {}).get("allow")
            if audio and not incoming:
                self._error(20151, "Authentication Failed: the token does not allow incoming calls")
                return
            self.registered = audio
            self.send("ready" if audio else "offline", {})
        elif type_ == "invite":
            if payload.get("reconnect"):
                self.send("hangup", {"callsid": payload.get("callsid", ""),
                                     "error": {"code": 31005, "message": "The sandbox does not resume calls"}})
                return
            call = OutgoingCall(sandbox=self.server.sandbox, account_sid=self.account_sid, to="",
                                from_=f"client:{self.identity}", client=self, sdk_callsid=payload.get("callsid", ""),
                                offer_sdp=payload.get("sdp", ""),
                                params=dict(parse_qsl(((payload.get("twilio") or {}).get("params")) or "")))
            call.to = call.params.get("To", "")
            self.calls[call.call_sid] = self.calls[call.sdk_callsid] = call
            with self.server.sandbox.lock:
                self.server.sandbox.simulated[call.call_sid] = call
            call.start()
        elif type_ in ("answer", "reject", "hangup", "dtmf"):
            call = self.calls.get(payload.get("callsid", ""))
            if call is not None:
                threading.Thread(target=call.browser_says, args=(type_, payload), daemon=True).start()
        elif type_ == "message":
            self.send("ack", {"acktype": "message", "callsid": payload.get("callsid", ""),
                              "voiceeventsid": payload.get("voiceeventsid", "")})

    def gone(self) -> None:
        self.registered = False
        for call in {id(c): c for c in self.calls.values()}.values():  # the browser went away: its calls end
            threading.Thread(target=call.browser_says, args=("hangup", {}), daemon=True).start()


# ---------------------------------------------------------------------------------------------------------------
# Calls with a browser on one side


class BrowserEndpoint:
    """A browser leg in a conference (conference.py's mixer): what its microphone sends, and a place to play."""

    def __init__(self, peer: Peer):
        self.peer, self.tap = peer, peer.open_tap()

    def pull(self) -> bytes | None:
        try:
            return self.tap.get_nowait()
        except queue.Empty:
            return None

    def push(self, pcm: bytes) -> None:
        track = self.peer.track

        def play():
            track.play(pcm)
            while len(track.queue) > 10:  # at most 200 ms behind
                track.queue.popleft()

        self.peer.media.loop.call_soon_threadsafe(play)


class _BrowserLeg:
    """What a call does with the browser's media and messages (mixed into SimulatedCall subclasses)."""

    def _media(self) -> MediaLoop:
        return self.sandbox.signalling.media

    def _person_talks(self, text: str) -> None:
        peer = getattr(self, "peer", None)
        if peer is not None:
            seconds = peer.say(text)
            self._log("person_says", text=text, seconds=round(seconds, 2))

    def _ringing_browser_says(self, type_: str, payload: dict) -> None:
        """A leg that rings the browser (`browser_says` of RingingCall and of a participant rung in a conference):
        its answer or rejection decides once; a hang-up before that is a rejection."""
        if type_ == "answer" and not self.decided.is_set():
            self.answer_sdp, self.browser_decision = payload.get("sdp", ""), "answer"
            self.decided.set()
        elif type_ == "reject" and not self.decided.is_set():
            self.browser_decision = "reject"
            self.decided.set()
        elif type_ == "dtmf":
            self._log("dtmf", digits=str(payload.get("dtmf", "")))
        elif type_ == "hangup":
            self.browser_gone.set()
            if not self.decided.is_set():
                self.browser_decision = "reject"
                self.decided.set()

    def _hold(self, gone: threading.Event, history_before: int, limit: float,
              also: threading.Event | None = None, leg: tuple[str, int] | None = None) -> str | None:
        """While a bridged leg lasts: until `gone` (the browser hung up) or `also` (the other side did), a REST
        update of the call (`Twiml=`, or `Status=completed`: Hangup), a REST update of the dialled `leg` (its sid
        and history length: it leaves the bridge) or `limit`. The call's redirected TwiML, else None."""
        until = time.monotonic() + limit
        while time.monotonic() < until:
            if gone.wait(0.2) or (also is not None and also.is_set()):
                return None
            if leg is not None and self._redirected_twiml(leg[1], call_sid=leg[0]) is not None:
                return None
            twiml = self._redirected_twiml(history_before)
            if twiml is not None:
                self._log("redirected", twiml=twiml[:2000])
                return twiml
        return None


@dataclass
class OutgoingCall(_BrowserLeg, SimulatedCall):
    """A browser's `invite`: the TwiML app's voice URL with From=client:<identity>, its TwiML followed."""

    client: object = None
    sdk_callsid: str = ""
    offer_sdp: str = ""
    params: dict = field(default_factory=dict)
    application_sid: str = ""
    peer: object = None
    answered: bool = False
    browser_gone: threading.Event = field(default_factory=threading.Event)
    digits: list = field(default_factory=list)
    rang: bool = False
    moved_leg: str | None = None  # the TwiML the app redirected the dialled person's leg to (into a conference)

    def conference_media(self) -> "BrowserEndpoint":
        return BrowserEndpoint(self.peer)

    def _run(self) -> None:
        voice_grant = ((self.client.claims or {}).get("grants") or {}).get("voice") or {}
        self.application_sid = (voice_grant.get("outgoing") or {}).get("application_sid", "")
        self.sandbox.add_call(self.account_sid, self.call_sid, to=self.to, from_=self.from_, status="ringing",
                              direction="inbound", start_time=None)
        self.peer = Peer.create(self._media())
        voice = self._voice_config({"voice_application_sid": self.application_sid})
        self.status_callback = voice["status_callback"]
        if not voice["url"]:
            self._log("error", error=f"application {self.application_sid} has no voice URL")
            self.status = "failed"
            return
        twiml = self._request(voice["url"], voice["method"], {},
                              fallback=(voice["fallback_url"], voice["fallback_method"]))
        if twiml is None:  # Twilio: 11200, the caller hears an application error
            self.status = "failed"
            return
        self._set_status("in-progress")
        self.client.send("ringing", {"callsid": self.call_sid})  # from now on the SDK knows the CallSid
        self.rang = True
        self._follow(twiml)

    def _params(self, extra: dict) -> dict:
        base = super()._params(extra)
        return {**self.params, **base, "ApplicationSid": self.application_sid, **extra}

    def _answer_browser(self) -> None:
        if not self.answered and not self.browser_gone.is_set():
            self.answered = True
            self.client.send("answer", {"callsid": self.call_sid, "sdp": self.peer.answer(self.offer_sdp)})

    def _log(self, kind: str, **fields) -> None:
        super()._log(kind, **fields)
        if kind == "say" and fields.get("text"):  # <Say>: Twilio answers the browser and speaks it, to the end
            self._answer_browser()
            self.browser_gone.wait(self.peer.say(fields["text"]))

    def _dial(self, verb):
        numbers = [(child.text or "").strip() for child in verb if child.tag == "Number"]
        if not numbers and (verb.text or "").strip() and not len(verb):
            numbers = [verb.text.strip()]
        if not numbers:
            return super()._dial(verb)
        number = numbers[0]
        behaviour = person_for(number)
        history_before = self._twiml_history_length()
        redirected = None
        leg = {"CallSid": "CA" + secrets.token_hex(16), "ParentCallSid": self.call_sid, "To": number,
               "From": verb.get("callerId", "") or self.from_, "Direction": "outbound-dial"}
        children = [child for child in verb if child.tag == "Number"]
        # The dialled leg is a call of its own (Calls/<leg>.json can redirect it: a voicemail drop).
        self.sandbox.add_call(self.account_sid, leg["CallSid"], parent_call_sid=self.call_sid, to=number,
                              from_=leg["From"], status="ringing", direction="outbound-dial", start_time=None)
        self._legs(children, leg, "initiated")
        self._legs(children, leg, "ringing")
        answered_at = None
        with self.sandbox.lock:
            owner = self.sandbox._number_owner(number)
        if owner is not None:  # one of the sandbox's numbers: its own call, which may ring another browser
            def answered():
                nonlocal answered_at
                if answered_at is None:
                    answered_at = time.monotonic()
                    self._legs(children, leg, "in-progress")
                self._answer_browser()

            inner = RingingCall(sandbox=self.sandbox, account_sid=owner, to=number, from_=leg["From"], say="",
                                caller_peer=self.peer, caller_gone=self.browser_gone, on_answered=answered)
            with self.sandbox.lock:
                self.sandbox.simulated[inner.call_sid] = inner
            self._log("dial_sandbox_number", to=number, call_sid=inner.call_sid)
            inner.run()
            behaviour = "sandbox-number"
            outcome = ("completed" if answered_at else "canceled" if self.browser_gone.is_set()
                       else "busy" if inner.status == "busy" else "no-answer")
        elif behaviour == "busy":
            outcome = "busy"
        elif behaviour == "no-answer":
            self.browser_gone.wait(float(verb.get("timeout", 30)))
            outcome = "no-answer" if not self.browser_gone.is_set() else "canceled"
        else:
            self.browser_gone.wait(RING_SECONDS)
            if self.browser_gone.is_set():
                outcome = "canceled"
            else:
                answered_at = time.monotonic()
                self._leg_status(leg["CallSid"], "in-progress")
                self._legs(children, leg, "in-progress")
                self._answer_browser()
                if behaviour == "voicemail":  # a machine: its greeting and tone, then it records what it hears
                    self._person_talks(VOICEMAIL_GREETING)
                    self.peer.play(tone_pcm())
                else:
                    self._person_talks(GREETING)
                leg_history = self._twiml_history_length(leg["CallSid"])
                redirected = self._hold(self.browser_gone, history_before, MAX_ANSWERED_SECONDS,
                                        leg=(leg["CallSid"], leg_history))
                outcome = "completed"
                # A redirected leg leaves the <Dial> (Twilio: the parent's Dial completes, its action runs) and
                # runs its new TwiML on its own: into a conference (a supervisor's coaching), or a voicemail drop's
                # <Play> to the machine, then <Hangup>.
                leg_twiml = self._redirected_twiml(leg_history, call_sid=leg["CallSid"])
                if leg_twiml is not None and "<Conference" in leg_twiml:
                    from devtools.twilio_sandbox.conference import PersonInConference

                    self._log("leg_redirected", call_sid=leg["CallSid"], twiml=leg_twiml[:2000])
                    self.moved_leg = leg_twiml
                    callbacks = [(c.get("statusCallback"), c.get("statusCallbackMethod", "POST")) for c in children
                                 if c.get("statusCallback")]
                    person = PersonInConference(sandbox=self.sandbox, account_sid=self.account_sid, to=number,
                                                from_=leg["From"], call_sid=leg["CallSid"], say=leg_twiml,
                                                parent_call_sid=self.call_sid,
                                                leg_callback=callbacks[0] if callbacks else None)
                    with self.sandbox.lock:
                        self.sandbox.simulated[person.call_sid] = person
                    person.start()
                elif leg_twiml is not None:
                    self._leg_run(leg["CallSid"], leg_twiml, behaviour)
        duration = int(time.monotonic() - answered_at) if answered_at else 0
        if self.moved_leg is None:  # a leg moved into a conference goes on: no final status for it yet
            self._leg_status(leg["CallSid"], outcome)
            self._legs(children, leg, outcome, CallDuration=str(duration))
        self._log("dial", to=[number], kinds=["Number"], outcome=outcome, caller_id=verb.get("callerId", ""),
                  person=behaviour, heard_voice_frames=self.peer.heard_voice_frames, digits="".join(self.digits))
        if redirected is not None:  # a REST update ends the <Dial> without its action
            return redirected
        action = verb.get("action")
        if not action:
            return False
        return self._request(action, verb.get("method", "POST"),
                             {"DialCallStatus": outcome, "DialCallDuration": str(duration),
                              "DialCallSid": leg["CallSid"]})

    def _leg_status(self, leg_sid: str, status: str) -> None:
        with self.sandbox.lock:
            call = self.sandbox.state["calls"][self.account_sid].get(leg_sid)
            if call is not None and call["status"] not in ("completed", "canceled", "busy", "no-answer", "failed"):
                call["status"] = status

    def _leg_run(self, leg_sid: str, twiml: str, behaviour: str) -> None:
        """The callee's leg after a REST redirect: `<Play>` is fetched (what the machine records), `<Hangup>` ends."""
        import urllib.request
        import xml.etree.ElementTree as ET

        self._log("leg_redirected", call_sid=leg_sid, twiml=twiml[:2000])
        try:
            root = ET.fromstring(twiml)
        except ET.ParseError as exc:
            self._log("error", error=f"invalid TwiML for the leg: {exc}")
            return
        for verb in root:
            if verb.tag == "Play":
                url = (verb.text or "").strip()
                try:
                    with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=15) as response:
                        audio = response.read()
                        self._log("leg_play", call_sid=leg_sid, url=url, status=response.status, bytes=len(audio),
                                  content_type=response.headers.get("Content-Type", ""), heard_by=behaviour)
                except (OSError, ValueError) as exc:  # Twilio: 11100/13227, the leg hears nothing and goes on
                    self._log("leg_play", call_sid=leg_sid, url=url, status=getattr(exc, "code", 0), bytes=0,
                              error=str(exc), heard_by=behaviour)
            elif verb.tag == "Hangup":
                self._log("leg_hangup", call_sid=leg_sid)
                break
            else:
                self._log("unsupported", verb=verb.tag, call_sid=leg_sid)
        self._leg_status(leg_sid, "completed")

    def _legs(self, children, leg: dict, status: str, **extra) -> None:
        for child in children:
            callback = child.get("statusCallback")
            if callback:
                self._callback(callback, child.get("statusCallbackMethod", "POST"),
                               {**leg, "CallStatus": status, **extra})

    def browser_says(self, type_: str, payload: dict) -> None:
        if type_ == "dtmf":
            digits = str(payload.get("dtmf", ""))
            self.digits.append(digits)
            self._log("dtmf", digits=digits)
        elif type_ in ("hangup", "reject"):
            if not self.browser_gone.is_set():
                self._log("browser_hangup")
            self.browser_gone.set()
            if self.status in ("ringing", "in-progress"):
                self.status = "completed"

    def _finish(self) -> None:
        super()._finish()
        if not self.browser_gone.is_set():
            self.browser_gone.set()
            if self.rang:
                self.client.send("hangup", {"callsid": self.call_sid})
            else:  # the SDK still knows the call by its own id; the voice URL failed (Twilio's 11200)
                self.client.send("hangup", {"callsid": self.sdk_callsid, "error": {
                    "code": 31000, "message": "The TwiML application's voice URL did not answer with TwiML (11200)"}})
        if self.peer is not None:
            self.peer.close()
        for key in (self.call_sid, self.sdk_callsid):
            self.client.calls.pop(key, None)


@dataclass
class RingingCall(_BrowserLeg, SimulatedCall):
    """A simulated inbound call whose `<Dial><Client>` rings a registered browser."""

    peer: object = None
    leg_sid: str = ""
    answer_sdp: str = ""
    decided: threading.Event = field(default_factory=threading.Event)
    browser_gone: threading.Event = field(default_factory=threading.Event)
    browser_decision: str = ""
    caller_peer: object = None  # a browser's call dialled this number: bridge to its peer, not to `say`
    caller_gone: threading.Event | None = None
    on_answered: object = None

    def _caller_left(self) -> bool:
        return self.caller_gone is not None and self.caller_gone.is_set()

    def _log(self, kind: str, **fields) -> None:
        super()._log(kind, **fields)
        if kind == "say" and fields.get("text") and self.caller_peer is not None:  # the calling browser hears it
            self.on_answered()
            self.caller_gone.wait(self.caller_peer.say(fields["text"]))
            if self.caller_gone.is_set():
                self.status = "completed"

    def _stream(self, stream, history_before: int) -> None:
        """`<Connect><Stream>` on a number a browser dialled: the browser's voice goes to the stream as 20 ms μ-law
        frames, the stream's audio to the browser (marks echoed, `clear` honoured), until either side ends."""
        if self.caller_peer is None:
            return super()._stream(stream, history_before)
        import base64
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import audioop  # deprecated, still in 3.11/3.12

        from websockets.sync.client import connect

        url = stream.get("url", "")
        parameters = {p.get("name"): p.get("value") for p in stream if p.tag == "Parameter"}
        stream_sid = "MZ" + secrets.token_hex(16)
        self._log("stream", url=url)
        self.on_answered()  # Twilio answers the call to run <Connect>: the browser's audio starts
        tap = self.caller_peer.open_tap()
        closed = threading.Event()
        counts = {"in": 0, "out": 0, "marks": 0, "clears": 0}
        with connect(url, open_timeout=5, close_timeout=2, max_size=2 ** 20) as ws:
            def send(message: dict) -> None:
                ws.send(json.dumps(message))

            def reader() -> None:
                try:
                    for raw in ws:
                        message = json.loads(raw)
                        event = message.get("event")
                        if event == "media":
                            counts["in"] += 1
                            payload = base64.b64decode(message.get("media", {}).get("payload", ""))
                            with warnings.catch_warnings():
                                warnings.simplefilter("ignore", DeprecationWarning)
                                self.caller_peer.play(audioop.ulaw2lin(payload, 2))
                        elif event == "mark":
                            counts["marks"] += 1
                            send({"event": "mark", "streamSid": stream_sid, "mark": message.get("mark", {})})
                        elif event == "clear":
                            counts["clears"] += 1
                            self.caller_peer.clear()
                except Exception:  # noqa: BLE001 - the server closed the socket
                    pass
                finally:
                    closed.set()

            send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            send({"event": "start", "sequenceNumber": "1", "streamSid": stream_sid,
                  "start": {"streamSid": stream_sid, "accountSid": self.account_sid, "callSid": self.call_sid,
                            "tracks": ["inbound"], "customParameters": parameters,
                            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
            threading.Thread(target=reader, daemon=True).start()
            chunk, until = 0, time.monotonic() + MAX_ANSWERED_SECONDS
            while not (closed.is_set() or self._caller_left() or time.monotonic() > until
                       or self._redirected_twiml(history_before) is not None):
                try:
                    pcm = tap.get(timeout=0.1)
                except queue.Empty:
                    continue
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    frame = audioop.lin2ulaw(pcm, 2)
                chunk += 1
                counts["out"] += 1
                try:
                    send({"event": "media", "sequenceNumber": str(chunk + 1), "streamSid": stream_sid,
                          "media": {"track": "inbound", "chunk": str(chunk), "timestamp": str(chunk * 20),
                                    "payload": base64.b64encode(frame).decode()}})
                except Exception:  # noqa: BLE001 - closed meanwhile
                    break
            if not closed.is_set():
                try:
                    send({"event": "stop", "sequenceNumber": str(chunk + 2), "streamSid": stream_sid,
                          "stop": {"accountSid": self.account_sid, "callSid": self.call_sid}})
                except Exception:  # noqa: BLE001
                    pass
        self.caller_peer.tap = None
        self._log("stream_ended", frames_to_stream=counts["out"], frames_from_stream=counts["in"],
                  marks=counts["marks"], clears=counts["clears"])
        if self._caller_left():
            self.status = "completed"

    def _dial(self, verb):
        signalling = getattr(self.sandbox, "_signalling", None)
        clients = [child for child in verb if child.tag == "Client"]
        targets = []
        if signalling is not None:
            for child in clients:
                targets += [(child, c) for c in signalling.registered(self.account_sid, (child.text or "").strip())
                            if not c.calls]  # a browser already in a call ignores an invite (the SDK's default)
        if not targets:
            return super()._dial(verb)
        child, client = targets[0]  # one browser rings (the sandbox bridges one peer)
        history_before, redirected = self._twiml_history_length(), None
        identity = (child.text or "").strip()
        self.leg_sid = "CA" + secrets.token_hex(16)
        leg = {"CallSid": self.leg_sid, "ParentCallSid": self.call_sid, "To": f"client:{identity}",
               "From": self.from_, "Direction": "outbound-dial"}
        # The rep's leg is a call of its own (Calls/<leg>.json can redirect it: a supervisor's coaching).
        self.sandbox.add_call(self.account_sid, self.leg_sid, parent_call_sid=self.call_sid, to=leg["To"],
                              from_=self.from_, status="ringing", direction="outbound-dial", start_time=None)
        self._legs(clients, leg, "initiated")
        self.peer = Peer.create(self._media())
        client.calls[self.leg_sid] = self
        client.send("invite", {"callsid": self.leg_sid, "sdp": self.peer.offer(), "parameters": {
            "CallSid": self.leg_sid, "AccountSid": self.account_sid, "From": self.from_, "To": f"client:{identity}",
            "ApiVersion": "2010-04-01", "Direction": "outbound-dial"}})
        self._legs(clients, leg, "ringing")
        self._log("ringing_browser", identity=identity)
        until = time.monotonic() + float(verb.get("timeout", 30))
        while not self.decided.wait(0.2) and time.monotonic() < until and not self._caller_left():
            pass
        answered_at, moved = None, None
        if not self.decided.is_set():
            client.send("cancel", {"callsid": self.leg_sid})
            outcome = "canceled" if self._caller_left() else "no-answer"
        elif self.browser_decision == "reject":
            outcome = "busy"
        else:
            self.peer.accept(self.answer_sdp)
            answered_at = time.monotonic()
            self._leg_status(self.leg_sid, "in-progress")
            self._legs(clients, leg, "in-progress")
            self._log("browser_answered", identity=identity)
            if self.caller_peer is not None:
                self.peer.bridge(self.caller_peer)
                self.on_answered()
            else:
                self._person_talks(self.say)
            leg_history = self._twiml_history_length(self.leg_sid)
            redirected = self._hold(self.browser_gone, history_before, MAX_ANSWERED_SECONDS, also=self.caller_gone,
                                    leg=(self.leg_sid, leg_history))
            # The rep's leg redirected into a conference (coaching) leaves the <Dial>: the parent's Dial completes
            # and its action runs; the browser goes on in the conference (`BrowserLegInConference`).
            leg_twiml = self._redirected_twiml(leg_history, call_sid=self.leg_sid)
            if leg_twiml is not None and "<Conference" in leg_twiml and not self.browser_gone.is_set():
                moved = self._move_leg(client, clients, leg_twiml)
            elif not self.browser_gone.is_set():
                client.send("hangup", {"callsid": self.leg_sid})
            outcome = "completed"
        duration = int(time.monotonic() - answered_at) if answered_at else 0
        if moved is None:  # a leg moved into a conference goes on: no final status for it yet
            self._leg_status(self.leg_sid, outcome)
            self._legs(clients, leg, outcome, CallDuration=str(duration))
        self._log("dial", to=[identity], kinds=["Client"], outcome=outcome, caller_id=verb.get("callerId", ""),
                  heard_voice_frames=self.peer.heard_voice_frames)
        if moved is None:
            client.calls.pop(self.leg_sid, None)
            self.peer.close()
        if redirected is not None:  # a REST update ends the <Dial> without its action
            return redirected
        action = verb.get("action")
        if not action:
            return False
        return self._request(action, verb.get("method", "POST"),
                             {"DialCallStatus": outcome, "DialCallDuration": str(duration),
                              "DialCallSid": self.leg_sid})

    _legs = OutgoingCall._legs
    _leg_status = OutgoingCall._leg_status

    def _move_leg(self, client, clients, twiml: str) -> "BrowserLegInConference":
        self._log("leg_redirected", call_sid=self.leg_sid, twiml=twiml[:2000])
        if self.caller_peer is not None:  # the two browsers now hear each other through the conference
            self.peer.bridged_to = self.caller_peer.bridged_to = None
        callbacks = [(c.get("statusCallback"), c.get("statusCallbackMethod", "POST")) for c in clients
                     if c.get("statusCallback")]
        moved = BrowserLegInConference(sandbox=self.sandbox, account_sid=self.account_sid,
                                       to=f"client:{client.identity}", from_=self.from_, call_sid=self.leg_sid, say=twiml, client=client,
                                       peer=self.peer, parent_call_sid=self.call_sid,
                                       leg_callback=callbacks[0] if callbacks else None)
        with self.sandbox.lock:
            self.sandbox.simulated[moved.call_sid] = moved
        client.calls[self.leg_sid] = moved  # the browser's hangup and digits go to the leg now
        return moved.start()

    def conference_media(self):
        """The caller in the conference its `<Dial action>` answered (after the rep's leg moved there)."""
        if self.caller_peer is not None:
            return BrowserEndpoint(self.caller_peer)
        from devtools.twilio_sandbox.conference import PersonVoice

        return PersonVoice(self.say or CALLER_WORDS)

    browser_says = _BrowserLeg._ringing_browser_says


@dataclass
class BrowserLegInConference(_BrowserLeg, SimulatedCall):
    """A browser's `<Dial><Client>` leg (an inbound call's rep) that the app redirected into a conference, as for a
    supervisor's coaching: the browser talks and listens through the conference's audio; its hangup leaves the
    conference; the leg's `<Client statusCallback>` gets its final status."""

    client: object = None
    peer: object = None
    parent_call_sid: str = ""
    leg_callback: tuple | None = None
    browser_gone: threading.Event = field(default_factory=threading.Event)

    def conference_media(self) -> "BrowserEndpoint":
        return BrowserEndpoint(self.peer)

    def _params(self, extra: dict) -> dict:
        return {**super()._params(extra), "ParentCallSid": self.parent_call_sid, "Direction": "outbound-dial",
                **extra}

    def _run(self) -> None:
        self.status_callback = self.leg_callback
        self._set_status("in-progress")
        self._follow(self.say)  # `say` carries the redirect's TwiML

    def browser_says(self, type_: str, payload: dict) -> None:
        if type_ == "dtmf":
            self._log("dtmf", digits=str(payload.get("dtmf", "")))
        elif type_ in ("hangup", "reject"):
            if not self.browser_gone.is_set():
                self._log("browser_hangup")
            self.browser_gone.set()

    def _finish(self) -> None:
        super()._finish()
        if not self.browser_gone.is_set():
            self.browser_gone.set()
            self.client.send("hangup", {"callsid": self.call_sid})
        self.client.calls.pop(self.call_sid, None)
        if self.peer is not None:
            self.peer.close()


# ---------------------------------------------------------------------------------------------------------------
# A browser dialled into a conference (Participants API, `To=client:<identity>`)


CALLER_WORDS = "Hello, I was told you can help me with my order."  # the waiting caller speaks to the rep


def browser_participant(sandbox, **kwargs):
    """A `BrowserParticipant` (the class is built on first use: conference.py imports this module lazily)."""
    global BrowserParticipant
    if BrowserParticipant is None:
        BrowserParticipant = _browser_participant_class()
    return BrowserParticipant(sandbox=sandbox, **kwargs)


BrowserParticipant = None


def _browser_participant_class():
    from devtools.twilio_sandbox import conference

    @dataclass
    class _BrowserParticipant(_BrowserLeg, conference.TransferredPerson):
        """`POST …/Participants.json To=client:<identity>`: the registered browser gets an `invite`; it answers
        (the leg joins the conference with the form's flags; the caller's words are played to the browser),
        rejects (busy) or lets it ring past `Timeout` (no-answer, `cancel`). While joined: the browser's hang-up,
        the app completing the leg, or the conference ending (the browser gets `hangup`) end it. A REST update of
        the leg while it rings cancels the invite. No registered, idle browser: no-answer at once."""

        client: object = None
        peer: object = None
        answer_sdp: str = ""
        decided: threading.Event = field(default_factory=threading.Event)
        browser_gone: threading.Event = field(default_factory=threading.Event)
        browser_decision: str = ""

        def _run(self) -> None:
            form = self.form
            callback = form.get("StatusCallback")
            self.status_callback = (callback, form.get("StatusCallbackMethod") or "POST") if callback else None
            identity = self.to[len("client:"):]
            self._log("dialled", to=self.to, behaviour="browser", conference_sid=self.conference_sid)
            self._progress("initiated")
            if self.client is None:
                self._log("no_browser", identity=identity)
                self._set_status("no-answer")
                return
            history_before = self._twiml_history_length()
            self.peer = Peer.create(self._media())
            self.client.calls[self.call_sid] = self
            self.client.send("invite", {"callsid": self.call_sid, "sdp": self.peer.offer(), "parameters": {
                "CallSid": self.call_sid, "AccountSid": self.account_sid, "From": form.get("From", ""),
                "To": self.to, "ApiVersion": "2010-04-01", "Direction": "outbound-api"}})
            self._set_status("ringing")
            self._progress("ringing")
            self._log("ringing_browser", identity=identity)
            try:
                self._ring_and_talk(identity, history_before)
            finally:
                self.client.calls.pop(self.call_sid, None)
                self.peer.close()

        def _ring_and_talk(self, identity: str, history_before: int) -> None:
            until = time.monotonic() + float(self.form.get("Timeout") or 60)
            while not self.decided.wait(0.1) and time.monotonic() < until:
                if self._redirected_twiml(history_before) is not None:  # the app ended the leg while it rang
                    self.client.send("cancel", {"callsid": self.call_sid})
                    self._log("canceled_by_app")
                    self.status = "canceled"
                    return
            if not self.decided.is_set():
                self.client.send("cancel", {"callsid": self.call_sid})
                self._set_status("no-answer")
                return
            if self.browser_decision == "reject":
                self._log("browser_rejected", identity=identity)
                self._set_status("busy")
                return
            if self._redirected_twiml(history_before) is not None:  # ended by the app just before the answer
                self.client.send("hangup", {"callsid": self.call_sid})
                return
            self.peer.accept(self.answer_sdp)
            self._set_status("in-progress")
            self._progress("in-progress")
            self._log("browser_answered", identity=identity)
            with self.sandbox.lock:
                conf = self.sandbox.state["conferences"][self.account_sid][self.conference_sid]
            form = self.form
            conference._join(self.sandbox, conf, self.call_sid, {
                "start_conference_on_enter": form.get("StartConferenceOnEnter"),
                "end_conference_on_exit": form.get("EndConferenceOnExit"), "muted": form.get("Muted"),
                "label": form.get("Label"), "coaching": form.get("Coaching"),
                "call_sid_to_coach": form.get("CallSidToCoach")})
            with self.sandbox.lock:
                started = conf["status"] == "in-progress"
            if started:
                self._person_talks(CALLER_WORDS)
            while not self._out_of_time():
                if self.browser_gone.wait(conference.POLL):
                    self._log("browser_hangup")
                    conference.leave(self.sandbox, self.account_sid, self.call_sid, reason="hung up")
                    return
                if self._redirected_twiml(history_before) is not None:
                    conference.leave(self.sandbox, self.account_sid, self.call_sid, reason="redirected")
                    break
                if not conference.in_conference(self.sandbox, self.account_sid, self.conference_sid, self.call_sid):
                    self._log("conference_ended")
                    break
            self.client.send("hangup", {"callsid": self.call_sid})

        browser_says = _BrowserLeg._ringing_browser_says

    return _BrowserParticipant
