"""A SQL MCP server (SQLite, PostgreSQL): read-only by construction, writes only by elevation."""

__version__ = "0.1.0"
