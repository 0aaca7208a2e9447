"""HTTP transports: the only modules that import starlette and sse-starlette."""
