"""Websocket routes: the live-call runtime (Twilio connects here), the Studio test chat and browser call, and
the live view. Every call socket is `CallConsumer` with its wire (`calls.engine.wires.WIRES`)."""
from channels.auth import AuthMiddlewareStack
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from calls.consumers.monitor import ListenConsumer, LiveCallsConsumer
from calls.consumers.stream import CallConsumer
from workspaces.middleware import TwoFactorSocketMiddleware


def studio(app):
    """Browser sockets: session auth, the same second factor as pages (docs/security.md), allowed hosts only."""
    return AllowedHostsOriginValidator(AuthMiddlewareStack(TwoFactorSocketMiddleware(app)))


websocket_urlpatterns: list = [
    # Twilio sends no Origin and no cookies: admitted by the signed single-use session parameter
    # (and, for ConversationRelay, the X-Twilio-Signature of the handshake).
    path("v1/stream/media", CallConsumer.as_asgi(wire="media_streams")),
    path("v1/stream/relay", CallConsumer.as_asgi(wire="conversation_relay")),
    # Browsers: logged-in admins of the version's workspace, same-origin only.
    path("v1/studio/test-chat/<int:version_id>/<int:environment_id>", studio(CallConsumer.as_asgi(wire="text"))),
    # "Call this version": the browser speaks Media Streams to the same engine.
    path("v1/studio/voice-call/<int:version_id>/<int:environment_id>", studio(CallConsumer.as_asgi(wire="browser"))),
    # Calls in Studio: the live view and listen & intervene (members of the call's workspace, same-origin).
    path("v1/studio/calls/live", studio(LiveCallsConsumer.as_asgi())),
    path("v1/studio/calls/<int:call_id>/listen", studio(ListenConsumer.as_asgi())),
]
