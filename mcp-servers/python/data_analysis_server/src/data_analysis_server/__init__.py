"""A data-analysis MCP server: typed tools, certified-correct statistics, safe queries, PNG plots."""

__version__ = "0.1.0"
