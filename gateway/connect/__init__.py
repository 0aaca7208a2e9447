"""`harbor-connect`: a stdio MCP server that is really a remote one, reached over Streamable HTTP or legacy SSE.

A desktop host (Claude Desktop and the like) can only start a command and talk to it over stdio; this package
is that command. `host` reads and writes the host's stdio, `bridge` keeps one remote MCP session alive for it
(reconnecting, resuming and re-initializing behind its back), and the transports (`streamable`, `legacy_sse`)
move JSON-RPC messages over HTTP with httpx. No web framework is imported anywhere below this package: it is a
client, and a test asserts it.
"""
