"""Shared state of gateway replicas, kept in Redis, so a client may reach any replica on every request.

What replicas share, and the module that owns it:

- session records (`records.py`): who a Streamable HTTP or SSE session belongs to, what it negotiated, where
  it lives; refreshed on use, gone after `ttl` idle, counted against a cluster-wide cap;
- GET-stream events (`events.py`): each session's server→client messages, bounded, readable by every
  replica, so a stream that reconnects elsewhere with `Last-Event-ID` gets what it missed;
- rate limits (`buckets.py`): token buckets checked by one atomic script on Redis's clock;
- heartbeats (`replicas.py`): which replicas are alive, at which address, and what they report;
- forwarding inboxes (`bus.py`): fire-and-forget messages to one replica or to all (cancellations,
  invalidations, replies that land on another replica);
- optionally, the audit trail as a stream (`audit_sink.py`).

Why Redis: it is the engine every peer uses for this (ContextForge, Kuadrant), it has exactly the structures
needed — keys with TTLs, sorted sets, streams with bounded length and blocking reads, pub/sub, Lua scripts
that run atomically on one clock — and a replica restarting or dying loses nothing another replica needs.
One Redis (or a primary behind Sentinel) serves a cluster; Redis Cluster (sharded) is not supported, since
scripts touch several keys. Redis 6.2 or newer is required (`connect` checks it); the tests run Debian's 7.0.

Every key and channel is named `harbor:<namespace>:<kind>:…` (`keys.py` builds them all, one place), so
two clusters — or a test and a cluster — can share one Redis by using different namespaces. Nothing here
imports a web framework or the MCP SDK; the transports and the session layer build on these pieces.
"""
