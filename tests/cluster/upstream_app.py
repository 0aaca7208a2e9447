"""A tiny real upstream for the nginx tests: `python upstream_app.py --port P --name N` (uvicorn + starlette).

- `GET /healthz` → `ok`;
- `GET /whoami` → JSON: this upstream's name and the request headers nginx passed on;
- `GET /sse?n=4&every=0.4` → an SSE stream of n events `every` seconds apart, WITHOUT `X-Accel-Buffering`
  (so only the proxy's own configuration decides whether nginx buffers it);
- `POST /echo` → JSON: the number of body bytes received.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route


def build(name: str) -> Starlette:
    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def whoami(request: Request) -> Response:
        return JSONResponse({"name": name, "headers": dict(request.headers)})

    async def sse(request: Request) -> Response:
        count = int(request.query_params.get("n", "4"))
        every = float(request.query_params.get("every", "0.4"))

        async def events() -> AsyncIterator[bytes]:
            for i in range(count):
                yield f"id: {i}\ndata: {name}-{i}\n\n".encode()
                await asyncio.sleep(every)

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    async def echo(request: Request) -> Response:
        return JSONResponse({"name": name, "bytes": len(await request.body())})

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/whoami", whoami),
            Route("/sse", sse),
            Route("/echo", echo, methods=["POST"]),
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", required=True)
    args = parser.parse_args()
    uvicorn.run(build(args.name), host="127.0.0.1", port=args.port, log_level="warning")
