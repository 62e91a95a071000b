"""Agent providers: what talks to the caller. `get_provider(ctx)` picks one from the version's `provider`.

The names are loaded on first use (PEP 562), so a worker process that only needs a speech stage or the turn
model (spawned without Django's apps) can import `calls.providers.speech.*` without loading the models.
"""
__all__ = ["Provider", "ProviderConfigError", "get_provider"]


def __getattr__(name):
    if name in __all__:
        from calls.providers import base

        return getattr(base, name)
    raise AttributeError(f"module 'calls.providers' has no attribute {name!r}")
