import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(websocket_urlpatterns),
    }
)

# Everything imported by now (Django, the apps, the vendors' SDKs: ~120,000 objects) lives as long as the process.
# Freeze it out of the cyclic garbage collector's view: a full collection then scans the calls' own objects only
# (measured: 0.1 ms instead of 74-91 ms, a pause of every call's audio on this process each time one runs;
# docs/performance.md, "Calls per process").
import gc  # noqa: E402

gc.freeze()
