"""The OAuth resource server's rules, in process: resources and metadata per endpoint, challenges, the token
checks, and how keys are discovered, cached and re-read. HTTP is the caller's: `fetch` here serves a dict
of documents and counts what it was asked (the e2e tests run a real authorization server)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anyio
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.config import OAuthConfig
from gateway.policy.jwks import metadata_urls
from gateway.policy.oauth import OAuthError, ResourceServer, endpoint_path

pytestmark = pytest.mark.anyio

ISSUER = "https://auth.example.com/tenant"
ORIGIN = "https://harbor.example.com"
NOW = 1_900_000_000.0


class Documents:
    """What the issuer serves, by URL; `asked` lists every fetch."""

    def __init__(self) -> None:
        self.bodies: dict[str, Any] = {}
        self.asked: list[str] = []
        self.gate: asyncio.Event | None = None

    async def __call__(self, url: str) -> bytes:
        self.asked.append(url)
        if self.gate is not None:
            await self.gate.wait()
        if url not in self.bodies:
            raise OSError("HTTP 404")
        return json.dumps(self.bodies[url]).encode()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _jwk(kid: str, key: Any, alg: str) -> dict[str, Any]:
    algorithm = jwt.algorithms.RSAAlgorithm if alg.startswith(("RS", "PS")) else jwt.algorithms.ECAlgorithm
    return json.loads(algorithm.to_jwk(key.public_key())) | {"kid": kid, "use": "sig", "alg": alg}


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    return {
        "rsa1": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "rsa2": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ec": ec.generate_private_key(ec.SECP256R1()),
    }


def _server(docs: Documents, clock: Clock, mono: Clock, **settings: Any) -> ResourceServer:
    config = OAuthConfig(resource=ORIGIN, authorization_servers=[ISSUER], **settings)
    return ResourceServer(config, docs, clock=clock, monotonic=mono)


def _publish(docs: Documents, *jwks: dict[str, Any]) -> None:
    docs.bodies["https://auth.example.com/.well-known/oauth-authorization-server/tenant"] = {
        "issuer": ISSUER,
        "jwks_uri": "https://auth.example.com/keys",
    }
    docs.bodies["https://auth.example.com/keys"] = {"keys": list(jwks)}


def _token(key: Any, kid: str, alg: str = "RS256", **claims: Any) -> str:
    body = {"iss": ISSUER, "sub": "ada", "aud": ORIGIN + "/mcp", "exp": NOW + 300, "scope": "mcp read", **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=alg, headers={"kid": kid})


@pytest.fixture
def clocks() -> tuple[Clock, Clock]:
    """The wall clock tokens are judged by, and the monotonic clock key reads are spaced by."""
    return Clock(NOW), Clock(1000.0)


def test_each_endpoint_is_its_own_resource_and_the_metadata_says_so() -> None:
    assert [endpoint_path(p) for p in ("/mcp", "/sse", "/message", "/", "/metrics", "/servers/a%20b/message")] == [
        "/mcp", "/sse", "/sse", "", "", "/servers/a%20b/sse",
    ]  # fmt: skip
    server = ResourceServer(
        OAuthConfig(resource=ORIGIN, authorization_servers=[ISSUER], scopes_supported=["x"]), Documents()
    )
    assert server.metadata("/mcp") == {
        "resource": ORIGIN + "/mcp",
        "authorization_servers": [ISSUER],
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["x"],
    }
    assert server.metadata("")["resource"] == ORIGIN  # type: ignore[index]
    assert server.metadata("/servers/anything/sse")["resource"] == ORIGIN + "/servers/anything/sse"  # type: ignore[index]
    assert [server.metadata(s) for s in ("/message", "/servers/a/message", "/status", "/servers/a/b/mcp")] == [None] * 4


def test_challenges_point_to_the_endpoints_metadata_and_say_why_only_when_a_token_was_sent() -> None:
    server = ResourceServer(
        OAuthConfig(resource=ORIGIN, authorization_servers=[ISSUER], required_scopes=["mcp"]), Documents()
    )
    assert server.challenge("/servers/db/mcp") == (
        f'Bearer resource_metadata="{ORIGIN}/.well-known/oauth-protected-resource/servers/db/mcp", scope="mcp"'
    )
    assert server.challenge("/", "invalid_token", 'bad "quote"').endswith(
        'error="invalid_token", error_description="bad \\"quote\\""'
    )


async def test_keys_are_discovered_from_the_issuer_metadata_and_tokens_verified(
    keys: dict[str, Any], clocks: tuple[Clock, Clock]
) -> None:
    docs = Documents()
    _publish(docs, _jwk("k1", keys["rsa1"], "RS256"), _jwk("e1", keys["ec"], "ES256"))
    server = _server(docs, *clocks)
    identity = await server.authenticate(_token(keys["rsa1"], "k1"), "/mcp")
    assert (identity.name, identity.scopes) == ("ada", frozenset({"mcp", "read"}))
    assert (await server.authenticate(_token(keys["ec"], "e1", "ES256", sub="bo"), "/mcp")).name == "bo"
    assert docs.asked == [
        "https://auth.example.com/.well-known/oauth-authorization-server/tenant",
        "https://auth.example.com/keys",
    ]


async def test_refusals_name_the_reason_and_never_the_token(keys: dict[str, Any], clocks: tuple[Clock, Clock]) -> None:
    docs = Documents()
    _publish(docs, _jwk("k1", keys["rsa1"], "RS256"))
    server = _server(docs, *clocks, required_scopes=["mcp"])
    cases = {
        "expired": _token(keys["rsa1"], "k1", exp=NOW - 31),
        "not valid yet": _token(keys["rsa1"], "k1", nbf=NOW + 31),
        "audience": _token(keys["rsa1"], "k1", aud="https://harbor.example.com/servers/x/mcp"),
        "missing claim 'aud'": _token(keys["rsa1"], "k1", aud=None),
        "missing claim 'exp'": _token(keys["rsa1"], "k1", exp=None),
        "issuer not accepted": _token(keys["rsa1"], "k1", iss="https://auth.example.com"),
        "bad signature": _token(keys["rsa2"], "k1"),
        "unknown signing key": _token(keys["rsa2"], "k9"),
        "algorithm not accepted": jwt.encode({"iss": ISSUER}, "s" * 32, algorithm="HS256", headers={"kid": "k1"}),
        "must name the caller": _token(keys["rsa1"], "k1", sub=None),
        "not a JWT": "a.b.c",
    }
    for reason, token in cases.items():
        with pytest.raises(OAuthError) as caught:
            await server.authenticate(token, "/mcp")
        assert caught.value.status == 401 and reason in caught.value.message, (reason, caught.value.message)
        assert 'error="invalid_token"' in caught.value.challenge and token not in caught.value.challenge
    with pytest.raises(OAuthError) as caught:
        await server.authenticate(_token(keys["rsa1"], "k1", scope="read"), "/mcp")
    assert caught.value.status == 403 and 'error="insufficient_scope", ' in caught.value.challenge
    assert (await server.authenticate(_token(keys["rsa1"], "k1", exp=NOW - 29), "/mcp")).name == "ada"  # leeway


async def test_an_unknown_kid_re_reads_the_keys_once_per_interval_and_concurrent_waiters_share_it(
    keys: dict[str, Any], clocks: tuple[Clock, Clock]
) -> None:
    docs = Documents()
    _publish(docs, _jwk("k1", keys["rsa1"], "RS256"))
    wall, mono = clocks
    server = _server(docs, wall, mono, jwks_url="https://auth.example.com/keys", jwks_min_refresh_seconds=10)
    await server.authenticate(_token(keys["rsa1"], "k1"), "/mcp")
    assert docs.asked == ["https://auth.example.com/keys"]  # jwks_url: no discovery
    _publish(docs, _jwk("k1", keys["rsa1"], "RS256"), _jwk("k2", keys["rsa2"], "RS256"))
    with pytest.raises(OAuthError, match="unknown signing key"):
        await server.authenticate(_token(keys["rsa2"], "k2"), "/mcp")  # too soon after the first read
    assert len(docs.asked) == 1
    mono.now += 10
    docs.gate = asyncio.Event()
    waiting = [
        asyncio.ensure_future(server.authenticate(_token(keys["rsa2"], "k2", sub=f"u{i}"), "/mcp")) for i in range(5)
    ]
    await asyncio.sleep(0)
    docs.gate.set()
    assert sorted(i.name for i in await asyncio.gather(*waiting)) == [f"u{i}" for i in range(5)]
    assert len(docs.asked) == 2  # five requests, one read


async def test_a_failed_read_keeps_the_known_keys_and_stale_keys_are_re_read_in_the_background(
    keys: dict[str, Any], clocks: tuple[Clock, Clock]
) -> None:
    docs = Documents()
    _publish(docs, _jwk("k1", keys["rsa1"], "RS256"))
    wall, mono = clocks
    server = _server(docs, wall, mono, jwks_cache_seconds=60)
    await server.authenticate(_token(keys["rsa1"], "k1"), "/mcp")
    docs.bodies.clear()  # the issuer goes down
    mono.now += 61
    assert (await server.authenticate(_token(keys["rsa1"], "k1", sub="b"), "/mcp")).name == "b"  # known key still
    with anyio.fail_after(5):
        while len(docs.asked) < 3:  # the background read: it fails, quietly
            await asyncio.sleep(0)
    assert docs.asked[-1] == "https://auth.example.com/keys"
    assert (await server.authenticate(_token(keys["rsa1"], "k1", sub="c"), "/mcp")).name == "c"


async def test_metadata_naming_another_issuer_is_not_used(keys: dict[str, Any], clocks: tuple[Clock, Clock]) -> None:
    docs = Documents()
    _publish(docs, _jwk("k1", keys["rsa1"], "RS256"))
    for url in metadata_urls(ISSUER):
        docs.bodies[url] = {"issuer": "https://evil.example.com", "jwks_uri": "https://auth.example.com/keys"}
    with pytest.raises(OAuthError, match="signing keys are unavailable"):
        await _server(docs, *clocks).authenticate(_token(keys["rsa1"], "k1"), "/mcp")
    assert "https://auth.example.com/keys" not in docs.asked
    assert metadata_urls("https://a.example.com") == [
        "https://a.example.com/.well-known/oauth-authorization-server",
        "https://a.example.com/.well-known/openid-configuration",
    ]


async def test_a_verified_token_is_remembered_but_its_audience_and_expiry_are_checked_every_time(
    keys: dict[str, Any], clocks: tuple[Clock, Clock]
) -> None:
    docs = Documents()
    _publish(docs, _jwk("k1", keys["rsa1"], "RS256"))
    wall, mono = clocks
    server = _server(docs, wall, mono)
    token = _token(keys["rsa1"], "k1", aud=ORIGIN + "/servers/a/mcp")
    assert (await server.authenticate(token, "/servers/a/mcp")).name == "ada"
    with pytest.raises(OAuthError, match="audience"):
        await server.authenticate(token, "/servers/b/mcp")
    wall.now += 300 + 31
    with pytest.raises(OAuthError, match="expired"):
        await server.authenticate(token, "/servers/a/mcp")


async def test_a_configured_audience_replaces_the_resource_urls(
    keys: dict[str, Any], clocks: tuple[Clock, Clock]
) -> None:
    docs = Documents()
    _publish(docs, _jwk("k1", keys["rsa1"], "RS256"))
    server = _server(docs, *clocks, audience="api://harbor")
    assert (await server.authenticate(_token(keys["rsa1"], "k1", aud="api://harbor"), "/mcp")).name == "ada"
    with pytest.raises(OAuthError, match="audience"):
        await server.authenticate(_token(keys["rsa1"], "k1"), "/mcp")
