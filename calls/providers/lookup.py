"""The lazy "module:Class" tables (providers, chat models, speech stages): a class is imported when a call first
uses it, so a vendor SDK missing from the machine fails that call's start with a named error, not the runtime."""
from __future__ import annotations

import importlib


def load_class(table: dict[str, str], name: str, what: str, error: type[Exception]):
    """`table[name]` imported. `what` names the kind in messages ("chat model vendor"); raises `error`."""
    target = table.get(name)
    if target is None:
        raise error(f"Unknown {what} {name!r}.")
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise error(f"The {what} {name} is not available on this server ({type(exc).__name__}).") from exc
