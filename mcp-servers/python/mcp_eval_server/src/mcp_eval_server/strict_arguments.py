"""Unknown argument names are errors, never silently dropped: schema closing and key checking over JSON Schema.

A misspelt option (`alternativ`, `asian_suport`) that is ignored gives a normal-looking answer to a question nobody
asked. So every object in a tool's input schema says `additionalProperties: false` (free-form maps such as a tool
call's own `arguments` keep their declared `additionalProperties`), and `unknown_keys` walks the call's arguments
along that schema and names each unknown key with the closest valid one. Pure functions over plain JSON data: the
server applies them to its tools; domain functions use `suggest` for their own dict options. Never imports `mcp`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

_REF = "#/$defs/"


def closest(key: str, valid: Iterable[str]) -> str | None:
    """The valid name most like `key` (difflib ratio at least 0.6), or None."""
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    return close[0] if close else None


def suggest(key: str, valid: Iterable[str]) -> str:
    """`unknown argument 'x'; did you mean 'y'? Valid names here: a, b.` — the message for one unknown key."""
    names = sorted(valid)
    close = closest(key, names)
    hint = f"; did you mean {close!r}?" if close else "."
    return f"unknown argument {key!r}{hint} Valid names here: {', '.join(names)}."


def close_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of `schema` where every object with `properties` and no explicit `additionalProperties` is closed."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: walk(v) for k, v in node.items()}
            if "properties" in out and "additionalProperties" not in out:
                out["additionalProperties"] = False
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)  # type: ignore[no-any-return]


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(_REF):
        return _resolve(root.get("$defs", {}).get(ref.removeprefix(_REF), {}), root)
    return node


def _object_branch(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any] | None:
    """The object schema a JSON object value must match (the one object arm of an anyOf/oneOf), if any."""
    node = _resolve(node, root)
    if "properties" in node:
        return node
    arms = [_resolve(a, root) for a in node.get("anyOf", []) + node.get("oneOf", [])]
    objects = [a for a in arms if "properties" in a]
    return objects[0] if len(objects) == 1 else None


def _array_items(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any] | None:
    node = _resolve(node, root)
    if isinstance(node.get("items"), dict):
        return node["items"]  # type: ignore[no-any-return]
    for arm in node.get("anyOf", []) + node.get("oneOf", []):
        arm = _resolve(arm, root)
        if isinstance(arm.get("items"), dict):
            return arm["items"]  # type: ignore[no-any-return]
    return None


def unknown_keys(value: Any, schema: dict[str, Any], root: dict[str, Any] | None = None, path: str = "") -> list[str]:
    """One message per key of `value` that the closed objects of `schema` do not declare, with its path."""
    root = root if root is not None else schema
    problems: list[str] = []
    if isinstance(value, dict):
        node = _object_branch(schema, root)
        if node is None:
            return problems
        props: dict[str, Any] = node.get("properties", {})
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if key in props:
                problems += unknown_keys(item, props[key], root, where)
            elif node.get("additionalProperties") is False:
                prefix = f"in {path}: " if path else ""
                problems.append(prefix + suggest(key, props))
    elif isinstance(value, list):
        items = _array_items(schema, root)
        if items is not None:
            for i, item in enumerate(value):
                problems += unknown_keys(item, items, root, f"{path}[{i}]")
    return problems
