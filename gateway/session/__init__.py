"""The client-session layer: one upstream shared by many clients without cross-talk.

`client` is what one connected client owns; `router` rewrites ids, routes replies and enforces deadlines
between client sessions and one upstream; `table` holds sessions by id; `instances` keeps per-session and
per-identity children; `bridge`, `modern`, `listen` and `stateless` serve the 2026-07-28 era on the same
children. No web framework below this line: the transports above speak HTTP, the upstreams below speak stdio.
"""
