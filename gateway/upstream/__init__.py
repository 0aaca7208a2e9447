"""Upstreams: where the gateway's messages go — a supervised stdio child or a remote HTTP server."""
