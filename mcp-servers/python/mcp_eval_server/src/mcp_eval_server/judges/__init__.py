"""Judges: LLM backends (OpenAI-compatible, Anthropic, MCP sampling), the heuristic judge, and the registry that
resolves a judge name without ever substituting another one."""
