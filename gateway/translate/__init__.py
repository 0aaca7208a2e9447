"""translate (`python -m gateway.translate`): one stdio MCP server over Streamable HTTP and legacy HTTP+SSE.

`cli` parses the command line and runs the app; `manager` is its session table over one stdio server.
"""
