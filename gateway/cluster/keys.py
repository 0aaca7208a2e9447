"""Every Redis key and channel name of a cluster, built in one place: `harbor:<namespace>:<kind>:…`.

| name | type | holds | bound |
|---|---|---|---|
| `replica:<id>` | string (JSON) | one replica's heartbeat | PX heartbeat ttl |
| `replicas` | set | ids of replicas that have beaten (index for `members`) | pruned of dead ids on read |
| `session:<id>` | hash (JSON fields) | one session record | PX session ttl, refreshed on use |
| `sessions` | sorted set | session ids by expiry (ms, Redis clock), for the cap | expired pruned on create/count |
| `events:<session>` | stream | the session's GET-stream events | MAXLEN ~ maxlen, PX ttl refreshed on append |
| `wake:<replica>` | stream | wakes the replica's event reader when its followed set changes | MAXLEN ~ 16, PX 60 s |
| `bus:<replica>` / `bus` | pub/sub channels | messages to one replica / to every replica | not stored |
| `rl:id:<identity>` | hash | identity token bucket | PEXPIRE until it would be full |
| `rl:tool:<len>:<identity>:<tool>` | hash | identity × tool bucket | PEXPIRE until it would be full |
| `audit` | stream | audit records of every replica | MAXLEN ~ maxlen |

The identity is length-prefixed in the identity × tool key so that no (identity, tool) pair can collide with
another whatever characters either holds. Session and replica ids are made by the gateway (no `:`).
Contract: pure string functions, no I/O; a namespace is checked once, when `Keys` is made.
"""

from __future__ import annotations

import re

_NAMESPACE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class Keys:
    """Names of one cluster's keys; `Keys("prod").session("abc")` == `"harbor:prod:session:abc"`."""

    def __init__(self, namespace: str) -> None:
        """Raises: ValueError when the namespace is empty, too long or holds other than `A-Z a-z 0-9 _ . -`."""
        if not _NAMESPACE.fullmatch(namespace):
            raise ValueError(
                f"cluster namespace {namespace!r} is not valid: use 1 to 64 of the characters A-Z a-z 0-9 _ . -"
            )
        self.namespace = namespace
        self.prefix = f"harbor:{namespace}:"

    def replica(self, replica_id: str) -> str:
        return f"{self.prefix}replica:{replica_id}"

    @property
    def replicas(self) -> str:
        return f"{self.prefix}replicas"

    def session(self, session_id: str) -> str:
        return f"{self.prefix}session:{session_id}"

    @property
    def sessions(self) -> str:
        return f"{self.prefix}sessions"

    def events(self, session_id: str) -> str:
        return f"{self.prefix}events:{session_id}"

    def wake(self, replica_id: str) -> str:
        return f"{self.prefix}wake:{replica_id}"

    def inbox(self, replica_id: str) -> str:
        return f"{self.prefix}bus:{replica_id}"

    @property
    def broadcast(self) -> str:
        return f"{self.prefix}bus"

    def identity_bucket(self, identity: str) -> str:
        return f"{self.prefix}rl:id:{identity}"

    def tool_bucket(self, identity: str, tool: str) -> str:
        return f"{self.prefix}rl:tool:{len(identity)}:{identity}:{tool}"

    @property
    def audit(self) -> str:
        return f"{self.prefix}audit"
