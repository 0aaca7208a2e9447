"""What a stdio child may see of the gateway's environment: an allow-list, never the whole of it.

A gateway's environment holds its operators' secrets (`ANTHROPIC_API_KEY`, cloud credentials, the gateway's
own tokens). A child inherits only what any program needs to run — `SAFE_NAMES` and the `LC_*` locale
variables — plus what its own config gives it: its `env` entries (values written in the config, usually
`${VAR}` references, so a secret reaches exactly the server whose entry names it) and the names listed in
`env_passthrough` (copied from the gateway's environment when set). Everything else, `HARBOR_*` included, is
withheld. Pure functions: no I/O beyond reading the mapping given (default `os.environ`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

SAFE_NAMES = frozenset({"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "TZ", "TMPDIR"})


def inherited(name: str) -> bool:
    """Whether a child gets this variable of the gateway's environment without asking for it."""
    return name in SAFE_NAMES or name.startswith("LC_")


def child_environment(
    env: Mapping[str, str] | None = None,
    passthrough: Iterable[str] = (),
    parent: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The complete environment of a child: the safe part of `parent`, then `passthrough` names, then `env`."""
    source = os.environ if parent is None else parent
    result = {name: value for name, value in source.items() if inherited(name)}
    for name in passthrough:
        if name in source:
            result[name] = source[name]
    result.update(env or {})
    return result
