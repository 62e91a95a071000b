"""Agent providers: what talks to the caller. `get_provider(ctx)` picks one from the version's `provider`."""
from calls.providers.base import Provider, ProviderConfigError, get_provider

__all__ = ["Provider", "ProviderConfigError", "get_provider"]
