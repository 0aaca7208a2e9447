"""Builds the ASGI apps (translate, and the aggregating gateway) from explicit routes and middleware lists."""

from __future__ import annotations

import contextlib
import hmac
import os
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

import anyio.to_thread
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gateway.core.addresses import is_loopback
from gateway.translate.manager import SessionManager
from gateway.transports._asgi import identity_of, send_error
from gateway.transports.guard import Authenticate, Guard
from gateway.transports.oauth import ProtectedResource
from gateway.transports.peer import CALL_PATH, PeerCallEndpoint, Peering, ReplicaHeader
from gateway.transports.sse import SSEMessages, SSEStream
from gateway.transports.streamable_http import StreamableHTTP

if TYPE_CHECKING:
    from gateway.config import OAuthConfig
    from gateway.hub.hub import Hub

OPEN_PATHS = ("/healthz", "/readyz", "/metrics")  # probes and scrapers need no token


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
    routes = [Route("/healthz", _healthz), Route("/readyz", _readyz(manager, options.auth_token))]
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


Drain = Callable[[float, Callable[[], bool]], Awaitable[None]]


def serve(
    app: Starlette,
    sock: socket.socket,
    *,
    drain: Drain | None = None,
    grace: float = 3.0,
) -> None:
    """Run an app under uvicorn on a socket from `listen` (uvicorn is imported here, so importing the gateway
    never loads it). Exits 3 when the app could not start, as `uvicorn.run` does.

    Graceful stop on SIGINT/SIGTERM: stop accepting, `drain(grace, forced)` (calls in flight may finish within
    `grace` seconds, then get a JSON-RPC error; a second Ctrl-C sets `forced`), then the lifespan's shutdown
    stops the children (run here too when the second Ctrl-C made uvicorn skip it). The process then returns
    normally (exit code 0, no traceback): uvicorn's re-raising of the caught signal is turned off."""
    import uvicorn

    class GracefulServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            self._captured_signals.clear()  # exit normally once stopped, not by the signal's default action

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            for server in self.servers:
                server.close()  # stop accepting before draining
            if drain is not None:
                await drain(grace, lambda: self.force_exit)
            await super().shutdown(sockets)
            if self.force_exit:  # uvicorn skips the lifespan's shutdown then; the children must still stop
                await self.lifespan.shutdown()

    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=1,
        server_header=False,
    )
    server = GracefulServer(config)
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(3)


def exit_now(code: int = 0) -> NoReturn:
    """Exit once everything is stopped and flushed, skipping the interpreter's teardown of every module (half a
    second on a busy machine, which would break the promise to exit within the shutdown grace plus a second)."""
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


async def _healthz(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def _readyz(manager: SessionManager, token: str | None):  # type: ignore[no-untyped-def]
    """translate's readiness; with `--auth-token`, the child's details only for a caller presenting it."""
    expected = f"Bearer {token}".encode() if token else None

    async def readyz(request: Request) -> JSONResponse:
        ready, body = manager.readiness()
        body["status"] = "ready" if ready else "not ready"
        presented = request.headers.get("authorization", "").encode("latin-1", "replace")
        if expected is not None and not hmac.compare_digest(presented, expected):
            body = {"status": body["status"], "sessions": body["sessions"]}
        return JSONResponse(body, status_code=200 if ready else 503)

    return readyz


def build_hub_app(hub: Hub) -> Starlette:
    """The aggregating gateway's app: merged and per-server endpoints, health, metrics, status page."""
    settings = hub.config.gateway
    keep_alive, max_bytes = settings.keep_alive, settings.max_message_bytes
    routes = [  # the data paths first: Starlette tries the routes in order on every request
        Route("/mcp", StreamableHTTP(hub.merged_sessions, keep_alive, max_bytes)),
        Route("/message", SSEMessages(hub.merged_sessions, max_bytes)),
        Route("/servers/{name}/{endpoint}", _PerServer(hub)),
        Route("/sse", SSEStream(hub.merged_sessions, "/message", keep_alive)),
        *_console(hub),
        Route("/healthz", _healthz),
        Route("/readyz", _hub_readyz(hub)),
        Route("/metrics", _metrics(hub)),
        Route(
            CALL_PATH,
            PeerCallEndpoint(
                hub.serve_peer_call, lambda secret: hub.cluster is not None and hub.cluster.is_peer(secret)
            ),
            methods=["POST"],
        ),
    ]
    loopback = is_loopback(settings.host)
    middleware = []
    if settings.state != "memory":  # one of several replicas: every answer names the one that gave it
        middleware.append(Middleware(ReplicaHeader, replica=lambda: hub.cluster.replica if hub.cluster else None))
    if settings.cors:
        middleware.append(_cors(settings.cors))
    middleware.append(
        Middleware(
            Guard,
            token=None,
            allowed_origins=(*settings.allow_origins, *settings.cors),
            check_host=loopback,
            allowed_hosts=settings.allowed_hosts,
        )
    )
    middleware.append(Middleware(ProtectedResource, settings=lambda: _oauth(hub), open_paths=OPEN_PATHS))
    middleware.append(
        Middleware(
            Authenticate,
            authenticate=lambda header: hub.authenticator.authenticate(header),
            lookup=lambda header: hub.authenticator.lookup(header),
            blocking=lambda: bool(
                hub.config.gateway.auth and hub.config.gateway.auth.jwt and hub.config.gateway.auth.jwt.jwks_url
            ),
            open_paths=(*OPEN_PATHS, "/", "/login", "/logout", CALL_PATH),  # peers prove the cluster secret
            open_prefixes=("/status/",),  # the console authenticates by cookie or bearer itself
        )
    )

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await hub.start()
        if hub.cluster is not None:  # one of several replicas: requests that must be served elsewhere are relayed
            cluster = hub.cluster
            hub.attach_peering(
                Peering(
                    hub._peer_http,
                    cluster.peer_header(),
                    cluster.replica,
                    hub.locate_event,
                    hub.locate_state,
                    stream_prefix=f"r{cluster.ordinal}.",
                    max_bytes=hub.config.gateway.max_message_bytes,
                )
            )
        try:
            yield
        finally:
            await hub.stop()

    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


def _oauth(hub: Hub) -> OAuthConfig | None:
    auth = hub.config.gateway.auth
    return auth.oauth if auth is not None else None


class _PerServer:
    """`/servers/{name}/mcp|sse|message`: one docked server alone, names unchanged, same policy."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._apps: dict[int, dict[str, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name, endpoint = scope["path_params"]["name"], scope["path_params"]["endpoint"]
        manager = self.hub.single.get(name) or self.hub.single.get(self.hub.config.slugs().get(name, ""))
        identity = identity_of(scope)
        hidden = (
            manager is not None
            and identity is not None
            and not self.hub.views.allows_server(identity, next(s for s, m in self.hub.single.items() if m is manager))
        )
        if manager is None or hidden or endpoint not in ("mcp", "sse", "message"):  # hidden: answered as absent
            await send_error(send, 404, -32600, f"no server {name!r} at this gateway")
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


def _console(hub: Hub) -> list[Route]:
    """The status console: `/`, `/status/servers/{name}`, and the login/logout forms (see `gateway.hub.console`)."""
    from gateway.hub.console import pages  # the hub's alone: translate never loads it
    from gateway.hub.console.logins import COOKIE, Logins, cookie
    from gateway.policy.auth import ADMIN_SCOPE, AuthError

    logins = Logins()

    async def viewer(request: Request) -> tuple[Any, str | None]:
        """(identity or None, the CSRF token of its cookie session or None). A bearer header wins."""
        if not hub.authenticator.enabled:
            return None, None
        header = request.headers.get("authorization")
        if header:
            identity = await _probe_identity(hub, header)
            if identity is not None:
                return identity, None
        login = logins.find(request.cookies.get(COOKIE))
        return (login.identity, login.csrf) if login is not None else (None, None)

    async def overview(request: Request) -> HTMLResponse:
        identity, csrf = await viewer(request)
        if hub.authenticator.enabled and identity is None:
            return HTMLResponse(pages.render_login(next_path="/"), status_code=401)
        if identity is None or ADMIN_SCOPE in identity.scopes:
            name = identity.name if identity is not None else None
            return HTMLResponse(pages.render(hub.snapshot(), viewer=name, csrf=csrf))
        return HTMLResponse(pages.render(hub.snapshot_for(identity), viewer=identity.name, csrf=csrf, full=False))

    async def server(request: Request) -> HTMLResponse:
        identity, csrf = await viewer(request)
        path = request.url.path
        if hub.authenticator.enabled and identity is None:
            return HTMLResponse(pages.render_login(next_path=path), status_code=401)
        admin = identity is None or ADMIN_SCOPE in identity.scopes
        detail = hub.server_detail(request.path_params["name"], None if admin else identity)
        if detail is None:
            return HTMLResponse("<!doctype html><title>Not found</title><p>No such server here.", status_code=404)
        return HTMLResponse(pages.render_server(detail, viewer=getattr(identity, "name", None), csrf=csrf))

    async def login(request: Request) -> Response:
        form = await _form(request)
        next_path = _local(form.get("next", "/"))
        if not _same_origin(request):
            return HTMLResponse(pages.render_login("Sign in from this page.", next_path), status_code=403)
        try:
            identity = hub.authenticator.authenticate(f"Bearer {form.get('token', '')}")
        except AuthError:
            return HTMLResponse(pages.render_login("That token is not valid here.", next_path), status_code=401)
        key, _ = logins.open(identity)
        secure = request.url.scheme == "https"
        return Response(status_code=303, headers={"location": next_path, "set-cookie": cookie(key, secure)})

    async def logout(request: Request) -> Response:
        form = await _form(request)
        if not _same_origin(request) or not logins.close(request.cookies.get(COOKIE), form.get("csrf", "")):
            return HTMLResponse(pages.render_login("Log out from the console page."), status_code=403)
        secure = request.url.scheme == "https"
        return Response(status_code=303, headers={"location": "/", "set-cookie": cookie("", secure, max_age=0)})

    return [
        Route("/", overview),
        Route("/status/servers/{name}", server),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]


async def _form(request: Request, limit: int = 8192) -> dict[str, str]:
    """A small urlencoded form (no multipart: nothing here uploads files)."""
    from urllib.parse import parse_qs

    body = await request.body()
    if len(body) > limit:
        return {}
    return {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


def _local(path: str) -> str:
    """A redirect target that stays on this gateway (no `//host` or scheme)."""
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else "/"


def _same_origin(request: Request) -> bool:
    """A browser's form POST says where it comes from; it must be this gateway (absent: not a browser)."""
    origin = request.headers.get("origin")
    return origin is None or origin == f"{request.url.scheme}://{request.headers.get('host', '')}"


def _hub_readyz(hub: Hub):  # type: ignore[no-untyped-def]
    async def readyz(request: Request) -> JSONResponse:
        identity = identity_of(request.scope) or await _probe_identity(hub, request.headers.get("authorization"))
        detail = hub.shows_details(identity)
        ready, body = hub.readiness(strict=request.query_params.get("strict") == "1", detail=detail)
        return JSONResponse(body, status_code=200 if ready else 503)

    return readyz


async def _probe_identity(hub: Hub, header: str | None) -> Any:
    """Who calls an open probe, if they say (a bad credential only means "not an admin": probes never 401)."""
    if not header or not hub.authenticator.enabled:
        return None
    from gateway.policy.auth import AuthError

    try:
        if hub.config.gateway.auth and hub.config.gateway.auth.jwt and hub.config.gateway.auth.jwt.jwks_url:
            return await anyio.to_thread.run_sync(hub.authenticator.authenticate, header)
        return hub.authenticator.authenticate(header)
    except AuthError:
        return None


def _metrics(hub: Hub):  # type: ignore[no-untyped-def]
    from gateway.hub.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE  # prometheus-client: the hub's alone

    async def metrics(_: Request) -> Response:
        return Response(hub.metrics.render(), media_type=METRICS_CONTENT_TYPE)

    return metrics
