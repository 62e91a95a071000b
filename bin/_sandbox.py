"""The Twilio sandbox for `bin/run --sandbox`: serves on 127.0.0.1 until stopped.

Seeds the Hosted-mode parent account and one BYOK demo account with the
credentials given on the command line, so the product can be clicked through
offline. A dev tool: production never runs it.
"""
import argparse
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dialer.sandbox.server import SandboxServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8010)
    parser.add_argument("--parent-sid", required=True)
    parser.add_argument("--parent-token", required=True)
    parser.add_argument("--byok-sid", required=True)
    parser.add_argument("--byok-token", required=True)
    args = parser.parse_args()

    sandbox = SandboxServer(port=args.port, auto_complete_validations=True)
    sandbox.add_account(sid=args.parent_sid, auth_token=args.parent_token, friendly_name="Hosted-mode parent (sandbox)")
    sandbox.add_account(sid=args.byok_sid, auth_token=args.byok_token, friendly_name="BYOK demo account (sandbox)")
    sandbox.start()
    print(f"==> Twilio sandbox on {sandbox.base_url}", flush=True)
    print(f"    BYOK demo credentials: Account SID {args.byok_sid}  Auth Token {args.byok_token}", flush=True)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    sandbox.stop()


if __name__ == "__main__":
    main()
