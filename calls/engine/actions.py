"""API actions during a call: the model (or a scripted rule) asks, the action runs in a task of its own (the
receive loop and the provider go on meanwhile), the outcome goes back as the tool result; each run is recorded
(redacted: no secret reaches the transcript or the model). `ApiActionRunner` is part of every `CallEngine`."""
from __future__ import annotations

import asyncio
import json
import logging
import time

from calls.engine.events import RunAction, SearchKnowledge, TextOut, Transcript

logger = logging.getLogger("calls.engine")

ACTION_CLIENT_TIMEOUT = 15.0  # seconds: agents.models.ApiAction.MAX_TIMEOUT


class ApiActionRunner:
    def _actions_init(self) -> None:
        self.action_runs: list[dict] = []
        self._action_tasks: set[asyncio.Task] = set()
        # One guarded client per call (connections reused between runs). Making one loads the CA bundle (~40 ms
        # of CPU): done in a thread, as soon as the call starts, so neither this call nor the others wait for it.
        self._action_http: asyncio.Task | None = None
        self._token_cache: dict = {}  # the call's OAuth2 tokens, dropped with the call

    async def on_run_action(self, event: RunAction) -> None:
        spec = self.ctx.api_action(event.action_name)
        if spec is None:
            await self.provider.on_tool_result(event.call_id, f"There is no action named {event.action_name!r}.")
            return
        if spec.wait_message and self.ctx.modality == "text":
            await self.dispatch(TextOut(spec.wait_message, last=True))
            await self.dispatch(Transcript("agent", spec.wait_message))
        task = asyncio.create_task(self._action_run(spec, event), name=f"call-action-{self.ctx.call_sid or 'test'}")
        self._action_tasks.add(task)
        task.add_done_callback(self._action_tasks.discard)

    async def on_search_knowledge(self, event: SearchKnowledge) -> None:
        """search_knowledge: looked up in a task of its own (the database, off the loop); the passages used go to
        the transcript (source and position), the answer back to the model as the tool result."""
        task = asyncio.create_task(self._knowledge_run(event), name=f"call-knowledge-{self.ctx.call_sid or 'test'}")
        self._action_tasks.add(task)
        task.add_done_callback(self._action_tasks.discard)

    async def _knowledge_run(self, event: SearchKnowledge) -> None:
        from channels.db import database_sync_to_async

        from knowledge.runtime import knowledge_tool_run

        try:
            lookup = await database_sync_to_async(knowledge_tool_run)(self.ctx.knowledge, event.query)
            line, result = lookup.transcript_line(), lookup.model_text()
        except Exception:  # noqa: BLE001 - a failed lookup must not end the call
            logger.exception("knowledge lookup failed", extra=self.log_extra())
            line, result = "", "The knowledge base could not be searched just now."
        if line:
            await self.dispatch(Transcript("event", line))
        await self.provider.on_tool_result(event.call_id, result)

    def _action_client(self) -> asyncio.Task:
        from workspaces import outbound

        if self._action_http is None:
            # Timeouts are per action (action_perform); this is only the ceiling.
            self._action_http = asyncio.create_task(asyncio.to_thread(
                outbound.async_client, timeout=ACTION_CLIENT_TIMEOUT, follow_redirects=True))
        return self._action_http

    async def _action_run(self, spec, event: RunAction) -> None:
        from agents.action_requests import action_perform, redact

        started = time.time()
        try:
            http = await asyncio.shield(self._action_client())
            outcome = await action_perform(action=spec, arguments=event.arguments, secrets=self.ctx.secrets,
                                           variables=self.ctx.variables, auth_connectors=self.ctx.auth_connectors,
                                           token_cache=self._token_cache, http=http)
            if self.closed:
                return
            hidden = [*map(str, self.ctx.secrets.values()), *(a.secret for a in self.ctx.auth_connectors.values())]
            arguments = event.arguments
            if isinstance(arguments, str):
                try:
                    arguments = json.loads(arguments or "{}")
                except ValueError:
                    arguments = {"(arguments)": arguments}
            parameters = {str(k)[:64]: redact(str(v), hidden)[:200] for k, v in (arguments or {}).items()} \
                if isinstance(arguments, dict) else {}
            run = {"name": spec.name, "parameters": parameters, "ok": outcome.ok, "status_code": outcome.status_code,
                   "duration_ms": outcome.duration_ms, "result": outcome.result_text if outcome.ok else outcome.error,
                   "started": started}
            self.action_runs.append(run)
            status = outcome.status_code or ("ok" if outcome.ok else "failed")
            self.record_turn("event", f"Action {spec.name}: {status}, {outcome.duration_ms} ms"
                             + ("" if outcome.ok else f" ({outcome.error})"))
            logger.info("api action ran", extra=self.log_extra(action=spec.name, ok=outcome.ok,
                                                               status=outcome.status_code,
                                                               duration_ms=outcome.duration_ms))
            self.notify({"kind": "action", **{k: v for k, v in run.items() if k != "started"}})
            self._later("action", run)
            await self.on_action_done(run)
            await self.provider.on_action_result(event.call_id, outcome)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a broken action must not end the call
            logger.exception("api action crashed", extra=self.log_extra(action=spec.name))
            if not self.closed:
                await self.provider.on_tool_result(event.call_id, "The action failed: internal error.")

    async def on_action_done(self, run: dict) -> None:
        pass

    @property
    def actions_pending(self) -> bool:
        return bool(self._action_tasks)

    async def _actions_stop(self) -> None:
        from calls.providers.base import tasks_cancel

        await tasks_cancel(t for t in self._action_tasks if t is not asyncio.current_task())
        if self._action_http is not None:
            try:
                await (await self._action_http).aclose()
            except Exception:  # noqa: BLE001
                pass
            self._action_http = None
        self._token_cache.clear()
