"""The ceiling: a no-op Starlette endpoint that answers MCP POSTs itself, with no child behind it.

Served by uvicorn with the same settings as translate, so the difference between the two is the bridge:
JSON-RPC parsing, routing, the pipe to the child and the child's own work.
"""

from __future__ import annotations

import secrets
import sys

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def mcp(request: Request) -> Response:
    message = orjson.loads(await request.body())
    if "id" not in message:
        return Response(status_code=202)
    if message["method"] == "initialize":
        result = {
            "protocolVersion": message["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "noop", "version": "1"},
        }
        body = {"jsonrpc": "2.0", "id": message["id"], "result": result}
        return Response(
            orjson.dumps(body), media_type="application/json", headers={"mcp-session-id": secrets.token_hex(16)}
        )
    text = message["params"]["arguments"]["text"]
    body = {
        "jsonrpc": "2.0",
        "id": message["id"],
        "result": {"content": [{"type": "text", "text": text}], "isError": False},
    }
    return Response(orjson.dumps(body), media_type="application/json")


async def ready(_: Request) -> Response:
    return Response(b"{}", media_type="application/json")


app = Starlette(routes=[Route("/mcp", mcp, methods=["POST"]), Route("/readyz", ready)])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
