"""Websocket routes (the live-call runtime adds its consumers here)."""
websocket_urlpatterns: list = []
