"""Chat models: one interface (`ChatModel`: open / stream / close, one `ChatError`), one module per vendor.

`chat_model(ctx, vendor)` builds the version's chosen vendor from `VENDORS` (a lazy "module:Class" table).
Adding a chat vendor: a module here with a `ChatModel` subclass, a row in `VENDORS` (and `SETTINGS_PREFIX`),
and a choice in `agents.catalogue.ChatVendor` (+ its secret in `VENDOR_SECRETS`). See docs/runtime.md.
"""
from calls.providers.chat.base import VENDORS, ChatError, ChatModel, chat_model

__all__ = ["VENDORS", "ChatError", "ChatModel", "chat_model"]
