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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from gateway import __version__
from gateway.config import HarborConfig, ServerConfig, load_config
from gateway.core.addresses import is_loopback
from gateway.core.environment import child_environment
from gateway.core.errors import StateDown, UpstreamError
from gateway.core.jsonrpc import Message
from gateway.hub.aggregate import Aggregator, Hooks
from gateway.hub.console.activity import Activity
from gateway.hub.docked import DockedServer
from gateway.hub.merged import MergedManager
from gateway.hub.metrics import Metrics
from gateway.policy.audit import AuditLog
from gateway.policy.auth import ADMIN_SCOPE, Authenticator, Identity
from gateway.policy.ratelimit import RateLimiter
from gateway.policy.views import ToolPolicy
from gateway.session import bridge
from gateway.session.instances import PerIdentity, PerSession
from gateway.session.modern import ModernServer, Pool
from gateway.session.router import Router
from gateway.session.table import drain, shared_init_params, supervised_router
from gateway.upstream.base import Upstream
from gateway.upstream.child import describe
from gateway.upstream.stdio import StdioUpstream

log = structlog.get_logger("gateway.hub.hub")

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
        self.activity = Activity()
        self.rounds = bridge.Calls()  # modern calls parked between input rounds, for every view
        self.metrics = Metrics(self.snapshot, config.gateway.metrics.identity_labels)
        self.port = config.gateway.port  # the bound port (serve sets it: --port 0 picks one)
        self.cluster: Any = None  # with `gateway.state: redis://…`: `gateway.hub.cluster.Cluster`, from `start`
        self.peering: Any = None  # with replicas: the transports' relay to other replicas (set by the app)
        self._peer_http: Any = None
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
        if self.cluster is not None:  # buckets shared by every replica
            from gateway.cluster.buckets import RedisRateLimiter

            self.limiter: Any = RedisRateLimiter(self.cluster.redis, self.cluster.namespace, settings.rate_limits)
        else:
            self.limiter = RateLimiter(settings.rate_limits)
        for aggregator in (self.merged, *(single.aggregator for single in self.single.values())):
            aggregator.page_size = settings.page_size
        self._audit_sink: Any = getattr(self, "_audit_sink", None)
        old = getattr(self, "audit", None)
        self.audit = AuditLog(settings.audit)
        if old is not None:
            old.close()

    def _hooks(self) -> Hooks:
        return Hooks(
            allows=lambda identity, server, tool: self.views.allows(identity, server, tool),
            allows_server=lambda identity, server: self.views.allows_server(identity, server),
            rate_check=self._rate_check,
            on_call_done=self._call_done,
            on_refused=lambda identity, reason: self._error("request", reason, identity),
        )

    def _rate_check(self, identity: str, tool: str) -> Any:
        if self.cluster is None:
            return self.limiter.check(identity, tool)
        return self._shared_rate_check(identity, tool)

    async def _shared_rate_check(self, identity: str, tool: str) -> float | None:
        """Raises: StateDown — a limit that cannot be checked is not silently lifted."""
        if not self.limiter.enabled:
            return None
        try:
            return await self.limiter.check(identity, tool)  # type: ignore[no-any-return]
        except Exception as exc:
            raise StateDown(
                f"rate limits are shared through Redis, which cannot be reached ({type(exc).__name__}); retry shortly"
            ) from exc

    def _call_done(self, record: dict[str, Any]) -> None:
        """Audit, metrics and the recent-calls buffer for one finished call; `record` is ours to keep."""
        response = record.pop("response")
        reason = record.pop("reason", None)
        self.audit.record(**record, response=response)  # queued; built and written in batches
        if self._audit_sink is not None:
            self._audit_sink.submit({k: v for k, v in record.items() if k not in ("arguments", "response")})
        self.metrics.call_done(record)
        self.activity.record(record["server"], record["outcome"], record["duration_ms"])
        del record["arguments"]  # the status page never shows arguments
        record["at"] = time.time()  # formatted when a page asks (`snapshot`), not on every call
        self.calls.append(record)
        if record["outcome"] != "ok":
            where = f"{record['server']}/{record['tool']}" if record["server"] else record["tool"]
            self._error(where, _failure(record["outcome"], response, reason), record["identity"])

    def _error(self, where: str, error: str, identity: str | None = None) -> None:
        """`identity`: whose call failed (None for a server's or the config's own errors)."""
        stamp = time.strftime("%H:%M:%S", time.gmtime())
        self.errors.append({"time": stamp, "where": where, "error": error, "identity": identity})

    # --- servers ------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Raises: StateUnavailable when `gateway.state` names a Redis that cannot be reached."""
        if self.config.gateway.state != "memory":
            await self._join()
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
        """Stop everything: sessions, then every child at once (briefly: the process is exiting)."""
        if self._watcher is not None:
            self._watcher.cancel()
        await self.merged_sessions.stop()
        await asyncio.gather(*(self._undock(slug, quick=True) for slug in list(self.docked)))
        self.audit.close()
        if self.cluster is not None:
            await self.cluster.stop()
        if self._peer_http is not None:
            await self._peer_http.aclose()

    async def drain(self, grace: float, forced: Callable[[], bool]) -> None:
        """Graceful stop, first part (`sessions.drain`) over every view and every child of every server."""
        tables = [self.merged_sessions, *self.single.values()]
        await drain(
            tables, lambda: [r for docked in self.docked.values() for r in self._routers(docked)], grace, forced
        )

    def _dock(self, slug: str, server: ServerConfig) -> DockedServer:
        max_bytes = self.config.gateway.max_message_bytes

        def router_for(init: Message, env: dict[str, str], probe: bool = False) -> Router:
            spawn = self._spawner(slug, server, env)
            return supervised_router(
                slug,
                spawn,
                init,
                server.request_timeout,
                max_bytes,
                startup_timeout=server.startup_timeout,
                probe=probe,
            )

        docked = DockedServer(slug, router_for(shared_init_params(), {}), settings=server)
        if server.session_mode == "per-session":
            docked.per_session = PerSession(router_for, server.max_sessions or 32)
        elif server.session_mode == "per-identity":
            docked.per_identity = PerIdentity(  # the child knows whom it serves (e.g. for a per-user database)
                lambda identity, env: router_for(shared_init_params(), {**env, "HARBOR_IDENTITY": identity}),
                server.max_identities,
                server.identity_idle_timeout,
            )
        docked.modern = self._modern_side(slug, server, docked, router_for)
        docked.listeners.append(self._server_event)
        self.docked[slug] = docked
        self._configs[slug] = server
        self.merged.add_server(docked)
        single = MergedManager(Aggregator({slug: docked}, self._hooks(), merged=False), view=slug)
        single.aggregator.page_size = self.config.gateway.page_size
        if self.cluster is not None:
            self._share(single)
        single.start_reaper()
        self.single[slug] = single
        log.info("server_docked", server=slug, kind=server.kind)
        return docked

    def _modern_side(self, slug: str, server: ServerConfig, docked: DockedServer, router_for: Any) -> ModernServer:
        """How this server answers modern callers: its handshake children for the bridge, per its session mode
        (per-session servers get a child per modern identity: no session exists), and the modern-era processes
        a probe finds (stdio servers only; a remote one is always bridged over its own session)."""
        identity_env = server.session_mode == "per-identity"
        if server.session_mode == "shared":
            handshake, per_identity = Pool(shared=docked.router), None
        else:
            per_identity = (
                (server.max_identities, server.identity_idle_timeout)
                if identity_env
                else (server.max_sessions or 32, server.identity_idle_timeout)
            )
            if docked.per_identity is not None:
                handshake = Pool(per_identity=docked.per_identity)  # both eras of an identity share its child
            else:
                handshake = Pool(
                    per_identity=PerIdentity(lambda _who, env: router_for(shared_init_params(), env), *per_identity)
                )

        def modern_router(who: str) -> Router:
            env = {"HARBOR_IDENTITY": who} if identity_env and who else {}
            return router_for(shared_init_params(), env, probe=True)  # type: ignore[no-any-return]

        return ModernServer(
            slug,
            handshake,
            modern_router,
            self.rounds,
            per_identity=per_identity,
            startup_timeout=server.startup_timeout,
            probe=server.kind == "stdio",
        )

    def _spawner(self, slug: str, server: ServerConfig, extra_env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        max_bytes = self.config.gateway.max_message_bytes
        if server.kind == "stdio":
            argv = [server.command or "", *server.args]
            env = child_environment({**server.env, **(extra_env or {})}, server.env_passthrough)
            return lambda: StdioUpstream(argv, name=slug, env=env, cwd=server.cwd, max_message_bytes=max_bytes)
        from gateway.upstream.http import HTTPUpstream

        def remote() -> Upstream:
            return HTTPUpstream(
                server.url or "", kind=server.kind, headers=server.headers, name=slug, max_message_bytes=max_bytes
            )

        return remote

    async def _undock(self, slug: str, quick: bool = False) -> None:
        docked = self.docked.pop(slug, None)
        self._configs.pop(slug, None)
        single = self.single.pop(slug, None)
        if single is not None:
            await single.stop()
        self.merged.remove_server(slug)
        if docked is None:
            return
        children = [r.child for r in self._routers(docked) if r.child is not None]
        if docked.modern is not None:
            await docked.modern.close()
            if docked.per_identity is None and docked.modern.handshake.per_identity is not None:
                await docked.modern.handshake.per_identity.close_all()
        if docked.per_session is not None:
            docked.per_session.routers.clear()
        if docked.per_identity is not None:
            await docked.per_identity.close_all(stop=False)
        await asyncio.gather(*(child.stop(quick=quick) for child in children))
        log.info("server_undocked", server=slug)

    # --- replicas (gateway.state: redis://…) ----------------------------------------------------------------

    async def _join(self) -> None:
        """Join the replicas sharing `gateway.state`: sessions, rounds, rate limits and answers become shared."""
        from gateway.cluster.audit_sink import RedisAuditSink
        from gateway.hub.cluster import Cluster
        from gateway.hub.peers import client as peer_client

        settings = self.config.gateway
        cluster = Cluster(settings, self.port)
        await cluster.start(idle_timeout=self.merged_sessions.idle_timeout)
        self.cluster = cluster
        self._peer_http = peer_client()
        self.rounds.states = bridge.RoundStates(cluster.secret)  # any replica can check any round's token
        self.rounds.prefix = f"{cluster.ordinal}."  # and knows which replica parked it
        self._apply_policy(self.config)
        if settings.audit.redis_stream:
            self._audit_sink = RedisAuditSink(cluster.redis, cluster.namespace, settings.audit.redis_maxlen)
        self._share(self.merged_sessions)
        self.metrics.replica = cluster.replica
        cluster.detail = lambda: {
            "ready": self.readiness(detail=False)[0],
            "sessions": len(self.merged_sessions.sessions) + sum(len(m.sessions) for m in self.single.values()),
        }
        cluster.keeps_headers = frozenset(  # a child's env may need them on whichever replica adopts the session
            h.lower() for server in self.config.mcpServers.values() for h in (server.header_to_env or {})
        )
        assert cluster.bus is not None
        cluster.bus.on("gone", self._on_gone)
        cluster.bus.on("answer", self._on_answer)
        cluster.bus.on("notify", self._on_notify)
        cluster.bus.on("subscription", self._on_subscription)

    def _share(self, manager: MergedManager) -> None:
        from gateway.hub.peers import Peers

        cluster = self.cluster
        manager.cluster = cluster
        manager.peering = self.peering
        manager.aggregator._ids = cluster.ids()
        manager.aggregator.peers = Peers(cluster, manager.view, self._peer_http)

    def attach_peering(self, peering: Any) -> None:
        """The transports' relay to other replicas (built by the app once the cluster is joined)."""
        self.peering = peering
        for manager in self.tables():
            manager.peering = peering

    def tables(self) -> list[MergedManager]:
        """Every view's session table: the merged one and one per server."""
        return [self.merged_sessions, *self.single.values()]

    def view(self, name: str) -> MergedManager | None:
        return self.merged_sessions if name == "merged" else self.single.get(name)

    async def _on_gone(self, _sender: str, payload: dict[str, Any]) -> None:
        """Another replica ended a session (DELETE): drop the copy held here."""
        session_id = payload.get("session")
        for manager in self.tables():
            if session_id in manager.sessions:
                await manager.close(str(session_id), "ended on another replica", everywhere=False)

    async def _on_answer(self, _sender: str, payload: dict[str, Any]) -> None:
        """A client's answer to a server→client request this replica asked, received by another replica."""
        manager = self.view(str(payload.get("view")))
        session = manager.sessions.get(str(payload.get("session"))) if manager is not None else None
        if manager is not None and session is not None:
            await manager.aggregator.from_client(session, payload["message"], "response")

    async def _on_notify(self, sender: str, payload: dict[str, Any]) -> None:
        """A client notification received by another replica (a cancellation of a call running here…)."""
        if sender == self.cluster.replica:
            return
        manager = self.view(str(payload.get("view")))
        session = manager.sessions.get(str(payload.get("session"))) if manager is not None else None
        if manager is not None and session is not None:
            await manager.aggregator._notification(session, payload["message"], from_peer=True)  # type: ignore[arg-type]

    def _on_subscription(self, _sender: str, payload: dict[str, Any]) -> None:
        """A session held here (un)subscribed a resource on another replica: the child here follows suit."""
        manager = self.view(str(payload.get("view")))
        session = manager.sessions.get(str(payload.get("session"))) if manager is not None else None
        if manager is not None and session is not None:
            manager.aggregator.apply_subscription(session, str(payload.get("uri")), bool(payload.get("on")))  # type: ignore[arg-type]

    async def serve_peer_call(self, payload: dict[str, Any], outbox: Any) -> Callable[[bool], None]:
        """Run a call another replica forwarded for one of its sessions (the child lives here); its messages go
        to `outbox`. Returns what to call when the stream ends (False: the caller left, cancel the call).

        Raises: GatewayError (no such view or server here; the session is unknown)."""
        from gateway.hub.peers import identity_from

        manager = self.view(str(payload.get("view")))
        if manager is None:
            raise UpstreamError(f"no view {payload.get('view')!r} on replica {self.cluster.replica}")
        identity = identity_from(payload)
        session: Any = await manager.find(str(payload["session"]), identity)
        message = payload["message"]
        request_id = message["id"]
        session.streams[request_id] = outbox
        try:
            await manager.aggregator.serve_for_peer(session, str(payload["server"]), message, payload.get("call"))
        except Exception:
            session.streams.pop(request_id, None)
            raise

        def finish(completed: bool) -> None:
            if session.streams.get(request_id) is outbox:
                del session.streams[request_id]
            if not completed:
                cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": request_id}}
                asyncio.get_running_loop().create_task(
                    manager.aggregator._notification(session, cancel, from_peer=True)
                )

        return finish

    async def locate_event(self, event_id: str) -> str | None:
        """The address of the replica whose POST stream `event_id` belongs to, when it is another live one."""
        head, dot, _ = event_id.partition(".")
        return await self._other(head[1:]) if dot and head.startswith("r") else None

    async def locate_state(self, token: Any) -> str | None:
        """The address of the replica where the call a `requestState` names is parked, when another live one."""
        key = bridge.RoundStates.call_key(token)
        head, dot, _ = (key or "").partition(".")
        return await self._other(head) if dot else None

    async def _other(self, ordinal: str) -> str | None:
        if not ordinal.isdigit() or self.cluster is None or int(ordinal) == self.cluster.ordinal:
            return None
        member = await self.cluster.member(int(ordinal))
        return member[1] if member is not None else None

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
                    "degraded": docked.degraded,
                    "pid": child.get("pid"),
                    "tools": None if tools is None else len(tools),
                    "in_flight": sum(len(s.inflight) for r in self._routers(docked) for s in r.sessions),
                    "mode": getattr(docked.settings, "session_mode", "shared"),
                    "children": len(self._routers(docked)) - 1,
                    "activity": self.activity.series(slug),
                }
            )
        sessions = len(self.merged_sessions.sessions) + sum(len(m.sessions) for m in self.single.values())
        return {
            "version": __version__,
            "servers": servers,
            "sessions": sessions,
            "calls": [{**c, "time": time.strftime("%H:%M:%S", time.gmtime(c["at"]))} for c in self.calls],
            "errors": list(self.errors),
            **({"replicas": self.cluster.members} if self.cluster is not None else {}),
        }

    def snapshot_for(self, identity: Identity) -> dict[str, Any]:
        """The part of the snapshot one identity may see: the servers its policy shows it, their own errors,
        and its own calls and failed calls. Others' calls and the config's errors are for `harbor:admin`."""
        snap = self.snapshot()
        snap["servers"] = [s for s in snap["servers"] if self.views.allows_server(identity, s["name"])]
        shown = {s["name"] for s in snap["servers"]}
        snap["calls"] = [c for c in snap["calls"] if c["identity"] == identity.name]
        if "replicas" in snap:  # which replica serves you, not where the replicas are
            snap["replicas"] = [{k: v for k, v in r.items() if k != "address"} for r in snap["replicas"]]
        snap["errors"] = [
            e
            for e in snap["errors"]
            if e["identity"] == identity.name or (e["identity"] is None and e["where"] in shown)
        ]
        return snap

    def server_detail(self, slug: str, identity: Identity | None) -> dict[str, Any] | None:
        """One server's page data for `identity` (None: everything), or None when it is not there for them."""
        docked = self.docked.get(slug)
        if docked is None or (identity is not None and not self.views.allows_server(identity, slug)):
            return None
        snap = self.snapshot() if identity is None else self.snapshot_for(identity)
        server = next(s for s in snap["servers"] if s["name"] == slug)
        tools = [
            t
            for t in docked.cached("tools/list") or []
            if identity is None or self.views.allows(identity, slug, t.get("name", ""))
        ]
        child = docked.router.child
        errors = [e for e in snap["errors"] if e["where"] == slug or e["where"].startswith(f"{slug}/")]
        return {"server": server, "tools": tools, "history": list(child.history) if child else [], "errors": errors}

    @staticmethod
    def _routers(docked: DockedServer) -> list[Any]:
        found = [
            docked.router,
            *(docked.per_session.routers if docked.per_session else ()),
            *(docked.per_identity.routers.values() if docked.per_identity else ()),
        ]
        if docked.modern is not None:
            found += [r for r in (*docked.modern.routers(), *docked.modern.handshake.routers()) if r not in found]
        return found

    def readiness(self, strict: bool = False, detail: bool = True) -> tuple[bool, dict[str, Any]]:
        """Ready when any server is (all of them with `strict`). Without `detail` the body holds only the status
        and counts: the probe is open, and server names and errors are for admins (`gateway.probes`)."""
        snap = self.snapshot()
        states = [s["state"] for s in snap["servers"]]
        ready = all(s == "ready" for s in states) if strict else any(s == "ready" for s in states)
        body: dict[str, Any] = {"status": "ready" if ready else "not ready", "sessions": snap["sessions"]}
        if self.cluster is not None:  # one of several replicas: say which, and whether the shared state is there
            body["replica"] = self.cluster.replica
            if not self.cluster.healthy:
                ready = False
                body["status"] = "not ready"
                body["reason"] = f"shared state (Redis) unreachable: {self.cluster.health.reason}"
            body["replicas"] = self.cluster.members if detail else len(self.cluster.members)
        if not detail:
            body["servers"] = {"total": len(states), "ready": states.count("ready")}
            return ready, body
        body["servers"] = {
            s["name"]: {
                "state": s["state"],
                "restarts": s["restarts"],
                "last_error": s["last_error"],
                **({"degraded": s["degraded"]} if s["degraded"] else {}),
            }
            for s in snap["servers"]
        }
        return ready, body

    def shows_details(self, identity: Identity | None) -> bool:
        """Whether a probe caller may see server names and errors: admins, everyone with auth off (the only
        caller is a loopback user), or everyone when `gateway.probes.detail` is `open`."""
        if self.config.gateway.probes.detail == "open" or not self.authenticator.enabled:
            return True
        return identity is not None and ADMIN_SCOPE in identity.scopes


def load_hub(path: Path) -> Hub:
    """Raises: ConfigError naming every problem in the file."""
    return Hub(load_config(path), path)


def _failure(outcome: str, response: Message | None, reason: str | None) -> str:
    """What the status page says of a call that did not succeed: its outcome and the message it got."""
    message = reason or ""
    if isinstance(response, dict):
        if isinstance(response.get("error"), dict):
            message = str(response["error"].get("message", ""))
        else:
            content = (response.get("result") or {}).get("content") or []
            texts = [b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"]
            message = " ".join(texts)
    return f"{outcome}: {message[:300]}" if message else outcome
