"""A minimal raw JSON-RPC stdio MCP server with one `echo` tool: no SDK, so the bridge is what is measured.

Answers initialize, tools/list, tools/call (echo) and ping; ignores notifications. One line in, one
line out, flushed per reply. Logs nothing: stdout is the protocol.
"""

from __future__ import annotations

import sys

import orjson

TOOLS = {
    "tools": [
        {
            "name": "echo",
            "description": "Echoes its text.",
            "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        }
    ]
}


def reply(message: dict) -> dict | None:
    method = message.get("method")
    if "id" not in message:
        return None
    if method == "tools/call":
        text = message["params"]["arguments"].get("text", "")
        return {
            "jsonrpc": "2.0",
            "id": message["id"],
            "result": {"content": [{"type": "text", "text": text}], "isError": False},
        }
    if method == "initialize":
        version = message["params"].get("protocolVersion", "2025-06-18")
        result = {
            "protocolVersion": version,
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "echo-child", "version": "1"},
        }
        return {"jsonrpc": "2.0", "id": message["id"], "result": result}
    if method == "tools/list":
        return {"jsonrpc": "2.0", "id": message["id"], "result": TOOLS}
    if method == "ping":
        return {"jsonrpc": "2.0", "id": message["id"], "result": {}}
    return {"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32601, "message": f"Method not found: {method}"}}


def main() -> None:
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        answer = reply(orjson.loads(line))
        if answer is not None:
            out.write(orjson.dumps(answer) + b"\n")
            out.flush()


if __name__ == "__main__":
    main()
