"""Builds the translate ASGI app from an explicit list of routes and an explicit list of middleware."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.sessions import SessionManager
from gateway.transports.guard import Guard
from gateway.transports.sse import SSEMessages, SSEStream
from gateway.transports.streamable_http import StreamableHTTP


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
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(options.cors_origins),
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
        )
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


async def _healthz(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def _readyz(manager: SessionManager):  # type: ignore[no-untyped-def]
    async def readyz(_: Request) -> JSONResponse:
        ready, body = manager.readiness()
        body["status"] = "ready" if ready else "not ready"
        return JSONResponse(body, status_code=200 if ready else 503)

    return readyz
