"""Harbor gateway: stdio ⇄ HTTP bridging and aggregation of MCP servers."""

__version__ = "0.1.0"
