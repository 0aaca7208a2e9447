"""Per-identity views: may this identity see or call this tool of this server?

Two layers, both globs (fnmatch syntax, case-sensitive on every OS):
1. The server's `ToolFilter`, which applies to everyone: a tool is published when its original name
   matches an `allow` glob and no `deny` glob (deny wins).
2. The `policies` rules. With no rules, every identity sees every published tool. With rules, a tool is
   visible to an identity only if some rule applies to it (its name matches an `identities` glob, or it
   holds one of the rule's `scopes`, or the rule lists neither) and that rule's `servers` glob matches
   the server slug and its `tools` glob matches the tool's original name.

Callers hide what is not allowed and answer a call to it exactly like an unknown tool. This module only
decides: pure functions over precompiled regexes, no I/O, no state besides the compiled rules.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway.config import PolicyRule, ToolFilter
from gateway.policy.auth import Identity

_NOTHING = re.compile(r"(?!)")
_MEMORY = 65_536  # remembered decisions per policy (a new policy is built on every config change)


def compile_globs(globs: Iterable[str]) -> re.Pattern[str]:
    """One regex matching any of the globs (case-sensitive); matches nothing for an empty list."""
    parts = [fnmatch.translate(glob) for glob in globs]
    return re.compile("|".join(parts)) if parts else _NOTHING


@dataclass(frozen=True)
class _Rule:
    identities: re.Pattern[str]
    scopes: frozenset[str]
    everyone: bool
    servers: re.Pattern[str]
    tools: re.Pattern[str]

    @classmethod
    def build(cls, rule: PolicyRule) -> _Rule:
        return cls(
            identities=compile_globs(rule.identities),
            scopes=frozenset(rule.scopes),
            everyone=not rule.identities and not rule.scopes,
            servers=compile_globs(rule.servers),
            tools=compile_globs(rule.tools),
        )

    def applies_to(self, identity: Identity) -> bool:
        return (
            self.everyone
            or self.identities.match(identity.name) is not None
            or not self.scopes.isdisjoint(identity.scopes)
        )


@dataclass(frozen=True)
class _Filter:
    allow: re.Pattern[str]
    deny: re.Pattern[str]
    allows_any: bool

    @classmethod
    def build(cls, tool_filter: ToolFilter) -> _Filter:
        return cls(compile_globs(tool_filter.allow), compile_globs(tool_filter.deny), bool(tool_filter.allow))

    def publishes(self, tool: str) -> bool:
        return self.allow.match(tool) is not None and self.deny.match(tool) is None


class ToolPolicy:
    """Decides visibility of servers and tools per identity; build a new one when the config changes."""

    def __init__(self, rules: list[PolicyRule], filters: Mapping[str, ToolFilter]) -> None:
        self._rules = [_Rule.build(rule) for rule in rules]
        self._filters = {server: _Filter.build(tool_filter) for server, tool_filter in filters.items()}
        self._decided: dict[tuple[Identity, str, str | None], bool] = {}  # answers are pure: remember them (bounded)

    def allows(self, identity: Identity, server: str, tool: str) -> bool:
        """True when `tool` (original name) of server `server` (slug) is visible to and callable by `identity`."""
        key = (identity, server, tool)
        known = self._decided.get(key)
        if known is None:
            if len(self._decided) >= _MEMORY:
                self._decided.clear()
            known = self._decided[key] = self._allows(identity, server, tool)
        return known

    def _allows(self, identity: Identity, server: str, tool: str) -> bool:
        server_filter = self._filters.get(server)
        if server_filter is not None and not server_filter.publishes(tool):
            return False
        if not self._rules:
            return True
        return any(
            rule.applies_to(identity) and rule.servers.match(server) and rule.tools.match(tool) for rule in self._rules
        )

    def allows_server(self, identity: Identity, server: str) -> bool:
        """True when `identity` may see server `server` (slug) at all: some rule grants it, or there are none.

        Resources and prompts, which have no tool name, follow this answer.
        """
        key = (identity, server, None)
        known = self._decided.get(key)
        if known is None:
            if len(self._decided) >= _MEMORY:
                self._decided.clear()
            known = self._decided[key] = self._allows_server(identity, server)
        return known

    def _allows_server(self, identity: Identity, server: str) -> bool:
        server_filter = self._filters.get(server)
        if server_filter is not None and not server_filter.allows_any:
            return False
        if not self._rules:
            return True
        return any(rule.applies_to(identity) and rule.servers.match(server) for rule in self._rules)
