"""Seams for apps that attach things to agent versions without agents importing them.

Agents never imports the apps built on it (tests/test_architecture.py). An app that keeps rows per version
(e.g. `knowledge`: the knowledge bases a version answers from) registers here in its AppConfig.ready():

- `version_copy_hooks`: called as ``hook(source=, target=, reason=)`` inside the transaction that copies a
  version's content (``reason``: "publish" draft → new published version, "draft" latest published → new
  draft, "restore" published → the draft, whose own rows the hook replaces). `target` may be a published
  version being created: write its rows with bulk_create (a published version's rows refuse save()).
- `version_diff_hooks`: called as ``hook(draft=, base=)`` by agents.selectors.version_diff; each returns a
  list of `agents.selectors.ActionChange` shown (and counted: publishing needs a change) with the actions.
"""
from __future__ import annotations


class HookList:
    def __init__(self):
        self._hooks = []

    def register(self, hook) -> None:
        if hook not in self._hooks:  # ready() may run twice (tests)
            self._hooks.append(hook)

    def __iter__(self):
        return iter(list(self._hooks))


version_copy_hooks = HookList()
version_diff_hooks = HookList()
