"""`python -m devtools.twilio_sandbox --port 8765 [--account SID:TOKEN ...]`: serve the Twilio sandbox until Ctrl-C."""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from devtools.twilio_sandbox.server import SandboxServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.twilio_sandbox", description=(
        "A local stand-in for Twilio's REST API. Point the app at it with TWILIO_API_BASE_URL=http://HOST:PORT."))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--account", action="append", default=[], metavar="SID:TOKEN",
                        help="seed an account the sandbox accepts (a customer's own, for BYOK); repeatable")
    parser.add_argument("--parent", default="", metavar="SID:TOKEN",
                        help="the parent account for Hosted mode (default: a generated one, printed at start)")
    parser.add_argument("--no-parent", action="store_true", help="don't create a parent account")
    parser.add_argument("--signalling-port", type=int, default=None,
                        help="the Voice SDK signalling (TLS websocket) port, default PORT+1; 0 turns it off")
    parser.add_argument("--auto-complete-validations", action="store_true",
                        help="caller ID verification calls succeed on their own shortly after they are requested")
    args = parser.parse_args(argv)

    sandbox = SandboxServer(args.host, args.port, auto_complete_validations=args.auto_complete_validations)
    lines = []
    if not args.no_parent:
        sid, _, token = args.parent.partition(":")
        sid, token = sandbox.add_account(sid or None, token or None, friendly_name="Sandbox parent (Hosted mode)")
        lines += ["Hosted-mode parent account:", f"  TWILIO_PARENT_ACCOUNT_SID={sid}", f"  TWILIO_PARENT_AUTH_TOKEN={token}"]
    for spec in args.account:
        sid, sep, token = spec.partition(":")
        if not sep or not sid.startswith("AC") or not token:
            parser.error(f"--account wants SID:TOKEN with an AC... SID, got {spec!r}")
        sandbox.add_account(sid, token, friendly_name="BYOK account")
        lines.append(f"BYOK account {sid} (token as given)")
    sandbox.start()
    print(f"Twilio sandbox on {sandbox.base_url}  (TWILIO_API_BASE_URL={sandbox.base_url})")
    signalling_port = args.port + 1 if args.signalling_port is None else args.signalling_port
    if signalling_port:
        sandbox.signalling_port = signalling_port
        host = sandbox.signalling.host
        print(f"Voice SDK signalling on wss://{host}/signal  (TWILIO_SANDBOX_SIGNALLING={host}; "
              f"open https://{host}/ once in the browser to accept its self-signed certificate)")
    for line in lines:
        print(line)
    print(f"Control API: {sandbox.base_url}/_sandbox/  (GET for the list of endpoints)")
    sys.stdout.flush()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    sandbox.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
