"""A local, stateful stand-in for Twilio's REST API (dev and test tool; production never uses it).

    from devtools.twilio_sandbox import SandboxServer
    with SandboxServer() as sandbox:
        sid, token = sandbox.add_account()
        ...  # settings.TWILIO_API_BASE_URL = sandbox.base_url

Run it for an offline click-through: `python -m devtools.twilio_sandbox --port 8765`.
See docs/twilio-sandbox.md.
"""
from devtools.twilio_sandbox.server import (
           TEST_NUMBER_BUYS,
           TEST_NUMBER_INVALID,
           TEST_NUMBER_UNAVAILABLE,
           ApiError,
           Fault,
           SandboxServer,
)

__all__ = ["SandboxServer", "Fault", "ApiError", "TEST_NUMBER_BUYS", "TEST_NUMBER_INVALID",
           "TEST_NUMBER_UNAVAILABLE"]
