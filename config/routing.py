"""Websocket routes: the live-call runtime (Twilio connects here) and the Studio test chat."""
from channels.auth import AuthMiddlewareStack
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from calls.consumers.browser_call import BrowserCallConsumer
from calls.consumers.monitor import ListenConsumer, LiveCallsConsumer
from calls.consumers.stream import MediaStreamConsumer, RelayConsumer, TestChatConsumer
from workspaces.middleware import TwoFactorSocketMiddleware

websocket_urlpatterns: list = [
    # Twilio sends no Origin and no cookies: admitted by the signed single-use session parameter
    # (and, for ConversationRelay, the X-Twilio-Signature of the handshake).
    path("v1/stream/media", MediaStreamConsumer.as_asgi()),
    path("v1/stream/relay", RelayConsumer.as_asgi()),
    # Browser sockets owe the same second factor as pages (TwoFactorSocketMiddleware, docs/security.md).
    # Browsers: logged-in admins of the version's workspace, same-origin only.
    path("v1/studio/test-chat/<int:version_id>/<int:environment_id>",
         AllowedHostsOriginValidator(AuthMiddlewareStack(TwoFactorSocketMiddleware(TestChatConsumer.as_asgi())))),
    # "Call this version": the browser speaks Media Streams to the same engine (admins, same-origin).
    path("v1/studio/voice-call/<int:version_id>/<int:environment_id>",
         AllowedHostsOriginValidator(AuthMiddlewareStack(TwoFactorSocketMiddleware(BrowserCallConsumer.as_asgi())))),
    # Calls in Studio: the live view and listen & intervene (members of the call's workspace, same-origin).
    path("v1/studio/calls/live", AllowedHostsOriginValidator(AuthMiddlewareStack(TwoFactorSocketMiddleware(LiveCallsConsumer.as_asgi())))),
    path("v1/studio/calls/<int:call_id>/listen",
         AllowedHostsOriginValidator(AuthMiddlewareStack(TwoFactorSocketMiddleware(ListenConsumer.as_asgi())))),
]
