"""Builds the ASGI apps (translate, and the aggregating gateway) from explicit routes and middleware lists."""

from __future__ import annotations

import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gateway.addresses import is_loopback
from gateway.sessions import SessionManager
from gateway.transports._asgi import identity_of, send_error
from gateway.transports.guard import Authenticate, Guard
from gateway.transports.sse import SSEMessages, SSEStream
from gateway.transports.streamable_http import StreamableHTTP

if TYPE_CHECKING:
    from gateway.hub import Hub


@dataclass(frozen=True)
class HTTPOptions:
    expose_sse: bool = True
    expose_streamable_http: bool = True
    sse_path: str = "/sse"
    message_path: str = "/message"
    streamable_path: str = "/mcp"
    keep_alive: float = 15.0
    max_message_bytes: int = 16 * 1024 * 1024
    auth_token: str | None = None
    allow_origins: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    check_host: bool = True
    extra_headers: dict[str, str] = field(default_factory=dict)


def build_app(manager: SessionManager, options: HTTPOptions) -> Starlette:
    routes = [Route("/healthz", _healthz), Route("/readyz", _readyz(manager))]
    if options.expose_streamable_http:
        routes.append(
            Route(options.streamable_path, StreamableHTTP(manager, options.keep_alive, options.max_message_bytes))
        )
    if options.expose_sse:
        routes.append(Route(options.sse_path, SSEStream(manager, options.message_path, options.keep_alive)))
        routes.append(Route(options.message_path, SSEMessages(manager, options.max_message_bytes)))

    middleware = []
    if options.cors_origins:
        middleware.append(_cors(options.cors_origins))
    middleware.append(
        Middleware(
            Guard,
            token=options.auth_token,
            allowed_origins=(*options.allow_origins, *options.cors_origins),
            check_host=options.check_host,
        )
    )

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await manager.start()
        try:
            yield
        finally:
            await manager.stop()

    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


def _cors(origins: tuple[str, ...] | list[str]) -> Middleware:
    """CORS for browser clients, only when asked: the MCP headers allowed in, the session id exposed."""
    return Middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=[
            "Authorization",
            "Content-Type",
            "Accept",
            "Mcp-Session-Id",
            "MCP-Protocol-Version",
            "Last-Event-ID",
        ],
        expose_headers=["Mcp-Session-Id"],
    )


class PortUnavailable(Exception):
    """The address to listen on cannot be bound; the message says what to do."""


def listen(host: str, port: int) -> socket.socket:
    """Bind the listening socket before anything starts (children, lifespan, the `serving` log line), so a
    taken port fails at once with a clear message instead of after every server was started and stopped."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise PortUnavailable(
            f"cannot listen on {host}:{port}: {reason}; stop whatever uses it or pass --port with a free port"
        ) from None
    sock.listen(2048)
    return sock


def serve(app: Starlette, sock: socket.socket) -> None:
    """Run an app under uvicorn on a socket from `listen` (uvicorn is imported here, so importing the gateway
    never loads it). Exits 3 when the app could not start, as `uvicorn.run` does."""
    import uvicorn

    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
        server_header=False,
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(3)


async def _healthz(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def _readyz(manager: SessionManager):  # type: ignore[no-untyped-def]
    async def readyz(_: Request) -> JSONResponse:
        ready, body = manager.readiness()
        body["status"] = "ready" if ready else "not ready"
        return JSONResponse(body, status_code=200 if ready else 503)

    return readyz


def build_hub_app(hub: Hub) -> Starlette:
    """The aggregating gateway's app: merged and per-server endpoints, health, metrics, status page."""
    settings = hub.config.gateway
    keep_alive, max_bytes = settings.keep_alive, settings.max_message_bytes
    routes = [
        Route("/", _status(hub)),
        Route("/healthz", _healthz),
        Route("/readyz", _hub_readyz(hub)),
        Route("/metrics", _metrics(hub)),
        Route("/mcp", StreamableHTTP(hub.merged_sessions, keep_alive, max_bytes)),
        Route("/sse", SSEStream(hub.merged_sessions, "/message", keep_alive)),
        Route("/message", SSEMessages(hub.merged_sessions, max_bytes)),
        Route("/servers/{name}/{endpoint}", _PerServer(hub)),
    ]
    loopback = is_loopback(settings.host)
    middleware = []
    if settings.cors:
        middleware.append(_cors(settings.cors))
    middleware.append(
        Middleware(Guard, token=None, allowed_origins=(*settings.allow_origins, *settings.cors), check_host=loopback)
    )
    middleware.append(
        Middleware(
            Authenticate,
            authenticate=lambda header: hub.authenticator.authenticate(header),
            blocking=lambda: bool(
                hub.config.gateway.auth and hub.config.gateway.auth.jwt and hub.config.gateway.auth.jwt.jwks_url
            ),
            open_paths=("/healthz", "/readyz", "/metrics"),
        )
    )

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()

    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


class _PerServer:
    """`/servers/{name}/mcp|sse|message`: one docked server alone, names unchanged, same policy."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._apps: dict[int, dict[str, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name, endpoint = scope["path_params"]["name"], scope["path_params"]["endpoint"]
        manager = self.hub.single.get(name) or self.hub.single.get(self.hub.config.slugs().get(name, ""))
        if manager is None or endpoint not in ("mcp", "sse", "message"):
            await send_error(send, 404, -32600, f"no server {name!r} at this gateway (see /readyz)")
            return
        apps = self._apps.get(id(manager))
        if apps is None or apps["manager"] is not manager:
            settings = self.hub.config.gateway
            slug = next(s for s, m in self.hub.single.items() if m is manager)
            apps = {
                "manager": manager,
                "mcp": StreamableHTTP(manager, settings.keep_alive, settings.max_message_bytes),
                "sse": SSEStream(manager, f"/servers/{slug}/message", settings.keep_alive),
                "message": SSEMessages(manager, settings.max_message_bytes),
            }
            self._apps[id(manager)] = apps
        await apps[endpoint](scope, receive, send)


def _status(hub: Hub):  # type: ignore[no-untyped-def]
    from gateway.status import ADMIN_SCOPE  # the hub's alone: translate never loads it
    from gateway.status import render as render_status

    async def status(request: Request) -> HTMLResponse:
        identity = identity_of(request.scope)
        if identity is None or identity.anonymous or ADMIN_SCOPE in identity.scopes:
            return HTMLResponse(render_status(hub.snapshot()))
        return HTMLResponse(render_status(hub.snapshot_for(identity), viewer=identity.name))

    return status


def _hub_readyz(hub: Hub):  # type: ignore[no-untyped-def]
    async def readyz(request: Request) -> JSONResponse:
        ready, body = hub.readiness(strict=request.query_params.get("strict") == "1")
        return JSONResponse(body, status_code=200 if ready else 503)

    return readyz


def _metrics(hub: Hub):  # type: ignore[no-untyped-def]
    from gateway.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE  # prometheus-client: the hub's alone

    async def metrics(_: Request) -> Response:
        return Response(hub.metrics.render(), media_type=METRICS_CONTENT_TYPE)

    return metrics
