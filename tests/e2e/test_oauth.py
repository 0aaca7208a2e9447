"""The gateway as an OAuth 2.1 resource server, against a real authorization server on loopback.

One gateway process (`python -m gateway serve`) docks the test everything-server twice with
`gateway.auth.oauth` pointing at the test issuer (tests/fixtures/oauth_issuer.py: keys generated now,
dynamic registration, authorization code + PKCE, JWT access tokens). The tests discover it as the MCP
authorization spec says a client must (401 → `resource_metadata` → protected-resource metadata →
authorization-server metadata → register → authorize → token → call), then drive the `mcp` SDK's own
`OAuthClientProvider` through the same flow headlessly, and check every refusal: another resource's
token, another issuer's, an expired one, one signed by an unknown key, a scope missing (403), and a key
rotation that must be picked up. Static tokens keep working beside OAuth.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import sys
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import httpx2
import mcp.types as types
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from tests.conftest import FIXTURE_SERVER, HubProcess, free_port
from tests.fixtures.oauth_issuer import SUBJECT, Issuer

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

STATIC = "static-ci-token-0123456789"
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
}
HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


class Gateway:
    def __init__(self, process: HubProcess, issuer: Issuer) -> None:
        self.process, self.issuer, self.url = process, issuer, process.url


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    issuer = Issuer(scopes=["mcp", "analyst"])
    port = free_port()
    config = f"""
mcpServers:
  everything: {{command: "{sys.executable}", args: ["{FIXTURE_SERVER}"]}}
  other copy: {{command: "{sys.executable}", args: ["{FIXTURE_SERVER}"]}}
gateway:
  host: 127.0.0.1
  auth:
    tokens: [{{token: {STATIC}, identity: ci, scopes: [analyst]}}]
    oauth:
      resource: http://127.0.0.1:{port}
      authorization_servers: ["{issuer.url}"]
      scopes_supported: [mcp, analyst]
      required_scopes: [mcp]
      jwks_min_refresh_seconds: 0
      resource_name: Harbor test gateway
  policies:
    - {{scopes: [analyst], servers: ["*"], tools: ["*"]}}
    - {{scopes: [mcp], servers: [everything], tools: [echo]}}
"""
    process = HubProcess(config, tmp_path_factory.mktemp("oauth"), port=port)
    try:
        yield Gateway(process, issuer)
    finally:
        process.stop()
        issuer.stop()


def _challenge(response: httpx.Response) -> dict[str, str]:
    header = response.headers["www-authenticate"]
    assert header.startswith("Bearer ")
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


async def _tools(url: str, token: str) -> set[str]:
    async with (
        httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), mode="legacy") as client,
    ):
        tools = {t.name for t in (await client.list_tools()).tools}
        if "everything__echo" in tools:
            echoed = await client.call_tool("everything__echo", {"text": "through oauth"})
            block = echoed.content[0]
            assert isinstance(block, types.TextContent) and block.text == "through oauth"
        return tools


async def _post_init(url: str, token: str | None) -> httpx.Response:
    headers = {**HEADERS, **({"authorization": f"Bearer {token}"} if token else {})}
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(url, json=INIT, headers=headers)


async def test_a_client_discovers_the_authorization_server_and_calls_with_its_token(gateway: Gateway) -> None:
    """The MCP authorization spec's steps, by raw HTTP, from a 401 to a tool call through the SDK Client."""
    mcp_url = gateway.url + "/mcp"
    with anyio.fail_after(60):
        async with httpx.AsyncClient(timeout=10) as http:
            refused = await http.post(mcp_url, json=INIT, headers=HEADERS)
            assert refused.status_code == 401
            challenge = _challenge(refused)
            assert challenge["resource_metadata"] == f"{gateway.url}/.well-known/oauth-protected-resource/mcp"
            assert challenge["scope"] == "mcp" and "error" not in challenge  # no token, no error code (RFC 6750)

            prm = (await http.get(challenge["resource_metadata"])).json()  # open: no token needed
            assert prm["resource"] == mcp_url and prm["authorization_servers"] == [gateway.issuer.url]
            assert prm["scopes_supported"] == ["mcp", "analyst"] and prm["bearer_methods_supported"] == ["header"]
            assert prm["resource_name"] == "Harbor test gateway"
            root = (await http.get(gateway.url + "/.well-known/oauth-protected-resource")).json()
            assert root["resource"] == gateway.url
            alone = await http.get(gateway.url + "/.well-known/oauth-protected-resource/servers/everything/mcp")
            assert alone.json()["resource"] == gateway.url + "/servers/everything/mcp"
            unknown = await http.get(gateway.url + "/.well-known/oauth-protected-resource/servers/no-such/mcp")
            assert unknown.status_code == 200  # the same answer for any name: it tells nobody which servers exist
            assert (await http.get(gateway.url + "/.well-known/oauth-protected-resource/status")).status_code == 404

            issuer = prm["authorization_servers"][0]
            asm = (await http.get(f"{issuer}/.well-known/oauth-authorization-server")).json()
            assert asm["issuer"] == issuer  # RFC 8414 section 3.3

            redirect = "http://127.0.0.1:1/callback"
            registered = await http.post(
                asm["registration_endpoint"],
                json={"redirect_uris": [redirect], "token_endpoint_auth_method": "none", "scope": challenge["scope"]},
            )
            client_id = registered.json()["client_id"]
            verifier = secrets.token_urlsafe(48)
            challenge_s256 = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            authorized = await http.get(
                asm["authorization_endpoint"],
                params={
                    "response_type": "code",
                    "client_id": client_id,
                    "redirect_uri": redirect,
                    "state": "xyz",
                    "code_challenge": challenge_s256,
                    "code_challenge_method": "S256",
                    "scope": challenge["scope"],
                    "resource": prm["resource"],  # RFC 8707: the token is for this endpoint
                },
            )
            assert authorized.status_code == 302
            answer = {k: v[0] for k, v in parse_qs(urlsplit(authorized.headers["location"]).query).items()}
            assert answer["state"] == "xyz" and answer["iss"] == issuer  # RFC 9207
            token = await http.post(
                asm["token_endpoint"],
                data={
                    "grant_type": "authorization_code",
                    "code": answer["code"],
                    "redirect_uri": redirect,
                    "client_id": client_id,
                    "code_verifier": verifier,
                    "resource": prm["resource"],
                },
            )
            access = token.json()["access_token"]

        assert await _tools(mcp_url, access) == {"everything__echo"}  # the `mcp` scope's policy: one tool


async def test_the_sdk_client_runs_its_own_oauth_flow_headlessly(gateway: Gateway) -> None:
    """`OAuthClientProvider` does discovery, dynamic registration, PKCE and the token exchange by itself;
    the redirect handler plays the browser (the issuer approves at once) and hands the code back."""
    received: dict[str, str] = {}

    async def follow(url: str) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            location = (await http.get(url)).headers["location"]
        received.update({k: v[0] for k, v in parse_qs(urlsplit(location).query).items()})

    async def callback() -> AuthorizationCodeResult:
        return AuthorizationCodeResult(code=received["code"], state=received.get("state"), iss=received.get("iss"))

    class Memory:
        tokens: OAuthToken | None = None
        client: OAuthClientInformationFull | None = None

        async def get_tokens(self) -> OAuthToken | None:
            return self.tokens

        async def set_tokens(self, tokens: OAuthToken) -> None:
            self.tokens = tokens

        async def get_client_info(self) -> OAuthClientInformationFull | None:
            return self.client

        async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
            self.client = client_info

    url = gateway.url + "/servers/everything/mcp"
    storage = Memory()
    provider = OAuthClientProvider(
        url,
        OAuthClientMetadata(client_name="harbor-test", redirect_uris=["http://127.0.0.1:1/callback"]),
        storage,
        redirect_handler=follow,
        callback_handler=callback,
    )
    with anyio.fail_after(60):
        async with (
            httpx2.AsyncClient(auth=provider, timeout=30) as http,
            Client(streamable_http_client(url, http_client=http), mode="legacy") as client,
        ):
            tools = {t.name for t in (await client.list_tools()).tools}
            assert tools == {"echo"}  # one server alone: its own names, the `mcp` scope's policy
    assert storage.tokens is not None and storage.client is not None
    issued = gateway.issuer.provider.issued[-1]
    assert issued["aud"] == url and issued["scope"] == "mcp"  # the SDK asked for this endpoint, as told


async def test_tokens_for_another_resource_issuer_key_or_time_are_refused(gateway: Gateway) -> None:
    issuer, mcp_url = gateway.issuer, gateway.url + "/mcp"
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused = {
        "another resource": issuer.mint(aud="https://elsewhere.example.com/mcp", scope="mcp"),
        "another endpoint": issuer.mint(aud=gateway.url + "/servers/other-copy/mcp", scope="mcp"),
        "no audience": issuer.mint(aud=None, scope="mcp"),
        "expired": issuer.mint(aud=mcp_url, scope="mcp", exp=1_000_000_000),
        "not yet valid": issuer.mint(aud=mcp_url, scope="mcp", nbf=4_000_000_000),
        "bad signature": issuer.mint(key=stranger, aud=mcp_url, scope="mcp"),
        "unknown key": issuer.mint(key=stranger, kid="no-such-kid", aud=mcp_url, scope="mcp"),
    }
    with anyio.fail_after(60):
        for why, token in refused.items():
            response = await _post_init(mcp_url, token)
            assert response.status_code == 401, why
            challenge = _challenge(response)
            assert challenge["error"] == "invalid_token", why
            assert challenge["resource_metadata"].endswith("/.well-known/oauth-protected-resource/mcp"), why
            assert token not in response.text, why

        # another issuer's token (signed with its own key, naming itself): refused before any key is fetched
        fetches = issuer.jwks_fetches
        other = Issuer(scopes=["mcp"])
        try:
            response = await _post_init(mcp_url, other.mint(aud=mcp_url, scope="mcp"))
        finally:
            other.stop()
        assert response.status_code == 401 and _challenge(response)["error"] == "invalid_token"
        assert other.jwks_fetches == 0 and issuer.jwks_fetches == fetches

        # one for the gateway as a whole is good at every endpoint; one for the endpoint, at that endpoint
        whole = issuer.mint(aud=gateway.url, scope="mcp")
        assert (await _post_init(mcp_url, whole)).status_code == 200
        assert (await _post_init(gateway.url + "/servers/everything/mcp", whole)).status_code == 200
        assert (await _post_init(mcp_url, issuer.mint(aud=[mcp_url, "x"], scope="mcp"))).status_code == 200


async def test_a_valid_token_without_the_required_scope_gets_403_insufficient_scope(gateway: Gateway) -> None:
    with anyio.fail_after(30):
        response = await _post_init(gateway.url + "/mcp", gateway.issuer.mint(aud=gateway.url, scope="analyst"))
    assert response.status_code == 403
    challenge = _challenge(response)
    assert challenge["error"] == "insufficient_scope" and challenge["scope"] == "mcp"
    assert challenge["resource_metadata"] == f"{gateway.url}/.well-known/oauth-protected-resource/mcp"


async def test_a_rotated_signing_key_is_picked_up_from_the_jwks(gateway: Gateway) -> None:
    issuer = gateway.issuer
    with anyio.fail_after(60):
        assert (await _post_init(gateway.url + "/mcp", issuer.mint(aud=gateway.url, scope="mcp"))).status_code == 200
        fetches = issuer.jwks_fetches
        old_key = issuer.keys[-1][1]
        new_kid = issuer.rotate()
        token = issuer.mint(aud=gateway.url, scope="mcp")
        assert (await _post_init(gateway.url + "/mcp", token)).status_code == 200
        assert issuer.jwks_fetches == fetches + 1  # the unknown kid made it read the keys once
        retired = issuer.mint(key=old_key, kid=new_kid, aud=gateway.url, scope="mcp")  # the old key, the new name
        assert (await _post_init(gateway.url + "/mcp", retired)).status_code == 401


async def test_policy_views_apply_to_oauth_identities_and_static_tokens_still_work(gateway: Gateway) -> None:
    issuer, mcp_url = gateway.issuer, gateway.url + "/mcp"
    with anyio.fail_after(90):
        analyst = await _tools(mcp_url, issuer.mint(aud=mcp_url, scope="mcp analyst"))
        assert {"everything__echo", "other-copy__echo", "everything__whoami"} <= analyst
        assert await _tools(mcp_url, issuer.mint(aud=mcp_url, scope="mcp")) == {"everything__echo"}
        assert {"everything__echo", "other-copy__echo"} <= await _tools(mcp_url, STATIC)
        wrong_static = await _post_init(mcp_url, "not-a-known-static-token")
        probe = {"authorization": f"Bearer {issuer.mint(aud=gateway.url, scope='mcp harbor:admin')}"}
        async with httpx.AsyncClient(timeout=10) as http:
            counts = (await http.get(gateway.url + "/readyz")).json()["servers"]
            detail = (await http.get(gateway.url + "/readyz", headers=probe)).json()["servers"]
    assert counts == {"total": 2, "ready": 2} and set(detail) == {"everything", "other-copy"}  # an OAuth admin
    assert wrong_static.status_code == 401
    assert _challenge(wrong_static)["resource_metadata"].endswith("/oauth-protected-resource/mcp")
    log = gateway.process.log()
    assert SUBJECT in log or "session_start" in log
    assert STATIC not in log
