"""The aggregating gateway: docks every configured server and serves them merged and one by one, under policy.

`Hub` owns the docked servers (each a shared, supervised upstream), the merged view (`/mcp`, `/sse`) and one
view per server (`/servers/{name}/mcp`, `/servers/{name}/sse`), the policy objects built from the config
(authentication, tool views, rate limits, audit), metrics, and the recent-activity ring buffers the status
page shows. `reload()` applies a changed config: added servers start, removed ones stop, changed ones
restart; sessions on untouched servers are not disturbed. The HTTP app is assembled in `build_hub_app`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import deque
from pathlib import Path
from typing import Any

import orjson
import structlog

from gateway import __version__
from gateway.addresses import is_loopback
from gateway.aggregate import Aggregator, Hooks
from gateway.child import describe
from gateway.config import HarborConfig, ServerConfig, load_config
from gateway.docked import DockedServer, PerSession
from gateway.merged import MergedManager
from gateway.metrics import Metrics
from gateway.policy.audit import AuditLog
from gateway.policy.auth import Authenticator, Identity
from gateway.policy.ratelimit import RateLimiter
from gateway.policy.views import ToolPolicy
from gateway.sessions import shared_init_params, supervised_router
from gateway.upstream.base import Upstream
from gateway.upstream.stdio import StdioUpstream

log = structlog.get_logger("gateway.hub")

WATCH_PERIOD = 1.0  # seconds between config-file checks


class Hub:
    def __init__(self, config: HarborConfig, config_path: Path | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.merged = Aggregator({}, self._hooks(), merged=True)
        self.merged_sessions = MergedManager(self.merged)
        self.single: dict[str, MergedManager] = {}
        self.docked: dict[str, DockedServer] = {}
        self._configs: dict[str, ServerConfig] = {}
        self.calls: deque[dict[str, Any]] = deque(maxlen=50)
        self.errors: deque[dict[str, Any]] = deque(maxlen=50)
        self.metrics = Metrics(self.snapshot)
        self._apply_policy(config)
        self._watcher: asyncio.Task[None] | None = None
        self._mtime = self._config_mtime()

    # --- policy -----------------------------------------------------------------------------------------

    def _apply_policy(self, config: HarborConfig) -> None:
        settings = config.gateway
        anonymous_ok = settings.auth is None and (is_loopback(settings.host) or settings.allow_unauthenticated)
        self.authenticator = Authenticator(settings.auth, allow_anonymous=anonymous_ok)
        filters = {config.slugs()[name]: server.tools for name, server in config.mcpServers.items()}
        self.views = ToolPolicy(settings.policies, filters)
        self.limiter = RateLimiter(settings.rate_limits)
        for aggregator in (self.merged, *(single.aggregator for single in self.single.values())):
            aggregator.page_size = settings.page_size
        old = getattr(self, "audit", None)
        self.audit = AuditLog(settings.audit)
        if old is not None:
            old.close()

    def _hooks(self) -> Hooks:
        return Hooks(
            allows=lambda identity, server, tool: self.views.allows(identity, server, tool),
            allows_server=lambda identity, server: self.views.allows_server(identity, server),
            rate_check=lambda identity, tool: self.limiter.check(identity, tool),
            on_call_done=self._call_done,
        )

    def _call_done(self, record: dict[str, Any]) -> None:
        """Audit, metrics and the recent-calls buffer for one finished call; `record` is ours to keep."""
        response = record.pop("response")
        # Without an audit file, skip building the audit entry: its argument digest and the response's size
        # (a re-encoding of the reply) cost ~25 µs a call, far more for a large reply.
        if self.audit.enabled:
            size = len(orjson.dumps(response)) if response is not None else 0
            self.audit.record(**record, response_bytes=size)
        self.metrics.call_done(record)
        del record["arguments"]  # the status page never shows arguments
        record["at"] = time.time()  # formatted when a page asks (`snapshot`), not on every call
        self.calls.append(record)
        if record["outcome"] not in ("ok", "tool_error"):
            self._error(f"{record['server']}/{record['tool']}", record["outcome"], record["identity"])

    def _error(self, where: str, error: str, identity: str | None = None) -> None:
        """`identity`: whose call failed (None for a server's or the config's own errors)."""
        stamp = time.strftime("%H:%M:%S", time.gmtime())
        self.errors.append({"time": stamp, "where": where, "error": error, "identity": identity})

    # --- servers ------------------------------------------------------------------------------------------

    async def start(self) -> None:
        for name, server in self.config.mcpServers.items():
            if server.enabled:
                self._dock(self.config.slugs()[name], server)
        await self.merged_sessions.start()
        if self.config_path is not None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                asyncio.get_running_loop().add_signal_handler(
                    signal.SIGHUP, lambda: asyncio.ensure_future(self.reload())
                )

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        await self.merged_sessions.stop()
        for slug in list(self.docked):
            await self._undock(slug)
        self.audit.close()

    def _dock(self, slug: str, server: ServerConfig) -> DockedServer:
        max_bytes = self.config.gateway.max_message_bytes
        router = supervised_router(
            slug, self._spawner(slug, server), shared_init_params(), server.request_timeout, max_bytes
        )
        docked = DockedServer(slug, router, settings=server)
        if server.session_mode == "per-session":
            spawn = self._spawner(slug, server)
            docked.per_session = PerSession(
                lambda init: supervised_router(slug, spawn, init, server.request_timeout, max_bytes),
                server.max_sessions or 32,
            )
        docked.listeners.append(self._server_event)
        self.docked[slug] = docked
        self._configs[slug] = server
        self.merged.add_server(docked)
        single = MergedManager(Aggregator({slug: docked}, self._hooks(), merged=False))
        single.aggregator.page_size = self.config.gateway.page_size
        single.start_reaper()
        self.single[slug] = single
        log.info("server_docked", server=slug, kind=server.kind)
        return docked

    def _spawner(self, slug: str, server: ServerConfig):  # type: ignore[no-untyped-def]
        max_bytes = self.config.gateway.max_message_bytes
        if server.kind == "stdio":
            argv = [server.command or "", *server.args]
            return lambda: StdioUpstream(argv, name=slug, env=server.env, cwd=server.cwd, max_message_bytes=max_bytes)
        from gateway.upstream.http import HTTPUpstream

        def remote() -> Upstream:
            return HTTPUpstream(
                server.url or "", kind=server.kind, headers=server.headers, name=slug, max_message_bytes=max_bytes
            )

        return remote

    async def _undock(self, slug: str) -> None:
        docked = self.docked.pop(slug, None)
        self._configs.pop(slug, None)
        single = self.single.pop(slug, None)
        if single is not None:
            await single.stop()
        self.merged.remove_server(slug)
        if docked is not None and docked.router.child is not None:
            await docked.router.child.stop()
        if docked is not None and docked.per_session is not None:
            for router in list(docked.per_session.routers):
                await docked.per_session.close(router)
        log.info("server_undocked", server=slug)

    def _server_event(self, server: DockedServer, what: str) -> None:
        if what == "down" and server.router.child is not None:
            self._error(server.slug, server.router.child.last_error or "stopped")

    # --- reload -------------------------------------------------------------------------------------------

    async def reload(self) -> None:
        """Apply the config file again; a config with errors is reported and ignored (nothing is lost)."""
        if self.config_path is None:
            return
        try:
            config = load_config(self.config_path)
        except ValueError as exc:
            log.error("reload_rejected", error=str(exc))
            self._error("config", str(exc))
            return
        wanted = {config.slugs()[name]: s for name, s in config.mcpServers.items() if s.enabled}
        self.config = config
        self._apply_policy(config)
        for slug in [s for s in self.docked if s not in wanted or wanted[s] != self._configs.get(s)]:
            await self._undock(slug)
        for slug, server in wanted.items():
            if slug not in self.docked:
                self._dock(slug, server)
        log.info("config_reloaded", servers=sorted(self.docked))

    def _config_mtime(self) -> float:
        try:
            return self.config_path.stat().st_mtime if self.config_path else 0.0
        except OSError:
            return 0.0

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_PERIOD)
            mtime = self._config_mtime()
            if mtime != self._mtime:
                self._mtime = mtime
                await self.reload()

    # --- observation ----------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        servers = []
        for slug, docked in self.docked.items():
            child = describe(docked.router.child) if docked.router.child else {"state": "stopped"}
            tools = docked.cached("tools/list")
            servers.append(
                {
                    "name": slug,
                    "state": child["state"],
                    "restarts": child.get("restarts", 0),
                    "last_error": child.get("last_error"),
                    "pid": child.get("pid"),
                    "tools": None if tools is None else len(tools),
                    "in_flight": sum(len(s.inflight) for r in self._routers(docked) for s in r.sessions),
                }
            )
        sessions = len(self.merged_sessions.sessions) + sum(len(m.sessions) for m in self.single.values())
        return {
            "version": __version__,
            "servers": servers,
            "sessions": sessions,
            "calls": [{**c, "time": time.strftime("%H:%M:%S", time.gmtime(c["at"]))} for c in self.calls],
            "errors": list(self.errors),
        }

    def snapshot_for(self, identity: Identity) -> dict[str, Any]:
        """The part of the snapshot one identity may see: the servers its policy shows it, their own errors,
        and its own calls and failed calls. Others' calls and the config's errors are for `harbor:admin`."""
        snap = self.snapshot()
        snap["servers"] = [s for s in snap["servers"] if self.views.allows_server(identity, s["name"])]
        shown = {s["name"] for s in snap["servers"]}
        snap["calls"] = [c for c in snap["calls"] if c["identity"] == identity.name]
        snap["errors"] = [
            e
            for e in snap["errors"]
            if e["identity"] == identity.name or (e["identity"] is None and e["where"] in shown)
        ]
        return snap

    @staticmethod
    def _routers(docked: DockedServer) -> list[Any]:
        return [docked.router, *(docked.per_session.routers if docked.per_session else ())]

    def readiness(self, strict: bool = False) -> tuple[bool, dict[str, Any]]:
        snap = self.snapshot()
        states = [s["state"] for s in snap["servers"]]
        ready = all(s == "ready" for s in states) if strict else any(s == "ready" for s in states)
        body = {
            "status": "ready" if ready else "not ready",
            "sessions": snap["sessions"],
            "servers": {
                s["name"]: {"state": s["state"], "restarts": s["restarts"], "last_error": s["last_error"]}
                for s in snap["servers"]
            },
        }
        return ready, body


def load_hub(path: Path) -> Hub:
    """Raises: ConfigError naming every problem in the file."""
    return Hub(load_config(path), path)
