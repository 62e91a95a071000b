"""Seams between apps that may not import each other, both built on telephony.

- `rep_call_hooks`: a caller an agent handed over to the dialer's reps (calls.services.rep_transfers) becomes an
  ordinary dialer call. calls runs ``hook(event=, workspace_id=, call_sid=, agent_call_id=, **fields)``:
  ``event="taken"`` (a rep accepted: ``user_id``, ``from_number``, ``to_number``) and ``event="status"`` (the
  rep's leg progressed or ended: ``status``, ``duration``). The dialer registers its writer in AppConfig.ready().
"""
from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


class HookList:
    def __init__(self, name: str):
        self.name = name
        self._hooks = []

    def register(self, hook) -> None:
        if hook not in self._hooks:  # ready() may run twice (tests)
            self._hooks.append(hook)

    def __iter__(self):
        return iter(list(self._hooks))

    def run(self, **kwargs) -> None:
        for hook in self:
            hook(**kwargs)


rep_call_hooks = HookList("rep_call_hooks")
