"""A minimal raw JSON-RPC stdio MCP server with one `echo` tool: no SDK, so the bridge is what is measured.

Answers initialize, tools/list, tools/call (echo) and ping; ignores notifications. One line in, one
line out, flushed per reply. Logs nothing: stdout is the protocol. With `--elicit` it also has `elicit_once`,
which asks the client one `elicitation/create` (key `user_name`) before answering: what `make bench` times an
input-required round through the bridge with.
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


ELICIT = {
    "name": "elicit_once",
    "description": "Asks one question, then answers.",
    "inputSchema": {"type": "object", "properties": {}},
}


def main() -> None:
    out = sys.stdout.buffer
    elicit = "--elicit" in sys.argv
    if elicit:
        TOOLS["tools"].append(ELICIT)
    waiting: dict[str, object] = {}  # our question's id → the id of the call it belongs to
    asked = 0
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        message = orjson.loads(line)
        if elicit and message.get("method") == "tools/call" and message["params"]["name"] == "elicit_once":
            asked += 1
            question = f"q{asked}"
            waiting[question] = message["id"]
            params = {
                "message": "name?",
                "requestedSchema": {"type": "object"},
                "_meta": {"harbor/inputKey": "user_name"},
            }
            answer = {"jsonrpc": "2.0", "id": question, "method": "elicitation/create", "params": params}
        elif "method" not in message and message.get("id") in waiting:
            call = waiting.pop(message["id"])
            answer = {"jsonrpc": "2.0", "id": call, "result": {"content": [{"type": "text", "text": "answered"}]}}
        else:
            answer = reply(message)
        if answer is not None:
            out.write(orjson.dumps(answer) + b"\n")
            out.flush()


if __name__ == "__main__":
    main()
