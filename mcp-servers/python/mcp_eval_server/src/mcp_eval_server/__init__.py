"""MCP evaluation server: reference metrics, LLM judges with bias controls, stored batch runs."""

__version__ = "0.1.0"
