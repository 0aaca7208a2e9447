"""Public names for merged tools, prompts and resources: deterministic, client-valid, reversible.

Clients accept tool and prompt names matching `NAME_PATTERN` (`^[a-zA-Z0-9_-]{1,64}$`). The gateway
publishes `<server slug>__<original name>` and routes back through a `NameMap`.

Server slugs contain only `[a-z0-9-]` (accents dropped and lower-cased, so a client that folds case
cannot merge two servers), never `_`, at most 24 characters; the config refuses two servers with the same
slug. Hence the first `__` of a public name always ends the slug, and names from two servers can never
collide. Within one server, a name that is valid as is keeps its exact form; any other (too long, or with
characters outside the pattern) becomes `<slug>__<sanitised, truncated name>-<8 hex of sha256(original)>`,
still at most 64 characters. Such a form could only clash with another name of the same server by a
32-bit hash coincidence (or a name crafted to mimic it): `NameMap.sync` leaves every name of such a clash
out (all of them, so the outcome does not depend on list order) and returns the clash for the server's
health to report, and `NameMap.add` raises instead of routing wrongly. A clash is always within one server:
it never affects another server's names.

Resource URIs become `harbor://<slug>/<original, percent-encoded>`: every character of the original
except ASCII letters, digits, `-._~/:` is percent-encoded as UTF-8 (so `%`, `?`, `#`, spaces and
non-ASCII text are encoded), which makes `parse_uri` an exact inverse for any string. Resource
templates use the same scheme on their literal parts and keep `{...}` expressions verbatim, so a client
can still expand them. Limit: a value a client substitutes into a template is percent-decoded once by
`parse_uri`, so a value that itself contains `%XX` reaches the upstream decoded (plain identifiers and
paths pass unchanged).

This module is pure string work: no I/O, no knowledge of sessions or HTTP.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from urllib.parse import quote, unquote

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
SEPARATOR = "__"
URI_SCHEME = "harbor"

_MAX_SLUG = 24
_MAX_NAME = 64
_SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,22}[a-z0-9])?$")
_SLUG_INVALID = re.compile(r"[^a-z0-9-]+")
_NAME_INVALID = re.compile(r"[^a-zA-Z0-9_-]+")
_URI_SAFE = "/:"
_URI_PREFIX = re.compile(r"^harbor://([a-z0-9-]+)/", re.IGNORECASE)
_TEMPLATE_EXPRESSION = re.compile(r"(\{[^{}]*\})")


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:length]


def slug(name: str) -> str:
    """Turn a server name into its slug: `[a-z0-9-]`, 1 to 24 characters, never containing `_`.

    Accents are dropped (`Zürich` → `zurich`), runs of other characters become one `-`, and leading and
    trailing `-` are removed. A longer result is cut and given a `-` plus 6 hex of sha256(name); a name
    with nothing usable becomes `server-<6 hex>`. `slug(slug(x)) == slug(x)`.
    """
    folded = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    text = _SLUG_INVALID.sub("-", folded.lower()).strip("-")
    if not text:
        return f"server-{_digest(name, 6)}"
    if len(text) <= _MAX_SLUG:
        return text
    return f"{text[: _MAX_SLUG - 7].rstrip('-')}-{_digest(name, 6)}"


def is_slug(text: str) -> bool:
    """Say whether `text` is a slug as `slug()` produces them."""
    return bool(_SLUG_PATTERN.match(text))


def _require_slug(server_slug: str) -> None:
    if not is_slug(server_slug):
        raise ValueError(f"{server_slug!r} is not a server slug; pass the result of slug(server_name)")


def public_name(server_slug: str, name: str) -> str:
    """Publish `name` of server `server_slug` as a name valid for `NAME_PATTERN`.

    Raises:
        ValueError: `server_slug` is not a slug (use `slug()` first).
    """
    _require_slug(server_slug)
    plain = f"{server_slug}{SEPARATOR}{name}"
    if NAME_PATTERN.match(plain):
        return plain
    suffix = f"-{_digest(name, 8)}"
    budget = _MAX_NAME - len(server_slug) - len(SEPARATOR) - len(suffix)
    return f"{server_slug}{SEPARATOR}{_NAME_INVALID.sub('_', name)[:budget]}{suffix}"


class NameMap:
    """Both directions between (server slug, original name) and public names, for one kind of name.

    Keep one map for tools and another for prompts. Not thread-safe; use it from one event loop.
    """

    def __init__(self) -> None:
        self._public: dict[str, dict[str, str]] = {}  # slug -> original -> public
        self._origin: dict[str, tuple[str, str]] = {}  # public -> (slug, original)

    def add(self, server_slug: str, name: str) -> str:
        """Register a name and return its public form; adding it again returns the same form.

        Raises:
            ValueError: `server_slug` is not a slug, or another name of that server has the same
                public form (a hash coincidence); the message names both.
        """
        known = self._public.get(server_slug, {}).get(name)
        if known is not None:
            return known
        public = public_name(server_slug, name)
        other = self._origin.get(public)
        if other is not None:
            raise ValueError(
                f"tool names {other[1]!r} and {name!r} of server {server_slug!r} both publish as {public!r}; "
                "rename one of them upstream"
            )
        self._public.setdefault(server_slug, {})[name] = public
        self._origin[public] = (server_slug, name)
        return public

    def sync(self, server_slug: str, names: list[str]) -> dict[str, list[str]]:
        """Make `names` the server's whole current set (forgetting the rest) and return the clashes.

        Names whose public forms clash (a hash coincidence, or a name crafted to mimic another's shortened
        form) are all left out; the result maps each clashing public form to its originals, sorted.

        Raises:
            ValueError: `server_slug` is not a slug.
        """
        _require_slug(server_slug)
        by_public: dict[str, list[str]] = {}
        for name in dict.fromkeys(names):
            by_public.setdefault(public_name(server_slug, name), []).append(name)
        self.remove_server(server_slug)
        clashes: dict[str, list[str]] = {}
        for public, originals in by_public.items():
            if len(originals) > 1:
                clashes[public] = sorted(originals)
                continue
            self._public.setdefault(server_slug, {})[originals[0]] = public
            self._origin[public] = (server_slug, originals[0])
        return clashes

    def resolve(self, public: str) -> tuple[str, str] | None:
        """Return (server slug, original name) for a registered public name, else None."""
        return self._origin.get(public)

    def remove_server(self, server_slug: str) -> None:
        """Forget every name of one server (it went away or its list changed)."""
        for public in self._public.pop(server_slug, {}).values():
            del self._origin[public]

    def names(self, server_slug: str) -> dict[str, str]:
        """Original → public names of one server (a copy)."""
        return dict(self._public.get(server_slug, {}))


def _encode(text: str) -> str:
    return quote(text, safe=_URI_SAFE, encoding="utf-8", errors="surrogatepass")


def public_uri(server_slug: str, uri: str) -> str:
    """Publish a resource URI as `harbor://<slug>/<percent-encoded uri>`; `parse_uri` reverses it.

    Raises:
        ValueError: `server_slug` is not a slug.
    """
    _require_slug(server_slug)
    return f"{URI_SCHEME}://{server_slug}/{_encode(uri)}"


def parse_uri(public: str) -> tuple[str, str] | None:
    """Return (server slug, original URI) for a URI made by `public_uri`, else None.

    The scheme and slug are matched case-insensitively (some URL parsers lower-case hosts).
    """
    match = _URI_PREFIX.match(public)
    if match is None:
        return None
    server = match.group(1).lower()
    if not is_slug(server):
        return None
    return server, unquote(public[match.end() :], encoding="utf-8", errors="surrogatepass")


def public_template(server_slug: str, uri_template: str) -> str:
    """Publish an RFC 6570 URI template; literal text is encoded as in `public_uri`, `{...}` kept as is.

    Raises:
        ValueError: `server_slug` is not a slug.
    """
    _require_slug(server_slug)
    parts = _TEMPLATE_EXPRESSION.split(uri_template)
    body = "".join(part if index % 2 else _encode(part) for index, part in enumerate(parts))
    return f"{URI_SCHEME}://{server_slug}/{body}"
