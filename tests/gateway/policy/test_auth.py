"""Authentication: static tokens, JWT HS256/RS256 with an injected clock, JWKS rotation, refused attacks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from gateway.config import AuthConfig, JWTConfig, TokenConfig
from gateway.policy.auth import ANONYMOUS, JWKS_REFRESH_SECONDS, Authenticator, AuthError, Identity

NOW = 1_800_000_000.0
ALICE_TOKEN = "alice-token-0123456789"
BOB_TOKEN = "bob-token-abcdefghijkl"
SECRET = "hs256-secret-0123456789abcdef-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
    return _rsa_key(), _rsa_key()


def _pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _jwks(*pairs: tuple[str, rsa.RSAPrivateKey]) -> bytes:
    keys = []
    for kid, key in pairs:
        entry = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        keys.append(entry | {"kid": kid, "use": "sig", "alg": "RS256"})
    return json.dumps({"keys": keys}).encode()


def _claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "carol", "scope": "read write", "iat": NOW, "exp": NOW + 300} | extra


def _static() -> Authenticator:
    config = AuthConfig(
        tokens=[
            TokenConfig(token=SecretStr(ALICE_TOKEN), identity="alice", scopes=["admin"]),
            TokenConfig(token=SecretStr(BOB_TOKEN), identity="bob"),
        ]
    )
    return Authenticator(config, allow_anonymous=True)


def _hs256(clock: Clock, **jwt_options: Any) -> Authenticator:
    return Authenticator(
        AuthConfig(jwt=JWTConfig(secret=SecretStr(SECRET), **jwt_options)), allow_anonymous=False, clock=clock
    )


def _refused(auth: Authenticator, header: str | None, message: str) -> AuthError:
    with pytest.raises(AuthError) as caught:
        auth.authenticate(header)
    assert caught.value.status == 401
    assert message in caught.value.message
    return caught.value


# -- no auth configured -------------------------------------------------------------------------


def test_without_auth_anonymous_is_allowed_only_when_the_caller_says_so() -> None:
    assert not Authenticator(None, allow_anonymous=True).enabled
    assert Authenticator(None, allow_anonymous=True).authenticate(None) is ANONYMOUS
    assert Authenticator(AuthConfig(), allow_anonymous=True).authenticate("Bearer whatever") is ANONYMOUS
    _refused(Authenticator(None, allow_anonymous=False), None, "authentication is required")


# -- static tokens ------------------------------------------------------------------------------


def test_static_tokens_map_to_their_identities_and_scopes() -> None:
    auth = _static()
    assert auth.enabled
    assert auth.authenticate(f"Bearer {ALICE_TOKEN}") == Identity("alice", frozenset({"admin"}))
    assert auth.authenticate(f"bearer  {BOB_TOKEN} ") == Identity("bob")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing credentials"),
        ("", "missing credentials"),
        ("Bearer", "unsupported credentials"),
        (f"Basic {ALICE_TOKEN}", "unsupported credentials"),
        (f"Bearer {ALICE_TOKEN}x", "invalid token"),
        (f"Bearer {ALICE_TOKEN[:-1]}", "invalid token"),
        ("Bearer a.b.c", "invalid token"),
    ],
)
def test_wrong_or_missing_static_tokens_are_refused_without_echoing_them(header: str | None, message: str) -> None:
    error = _refused(_static(), header, message)
    assert ALICE_TOKEN[:10] not in error.message and ALICE_TOKEN[:10] not in str(error)


def test_anonymous_is_not_granted_when_auth_is_configured() -> None:
    _refused(_static(), None, "missing credentials")


# -- JWT HS256 ----------------------------------------------------------------------------------


def test_hs256_valid_token_gives_identity_from_claim_and_space_separated_scopes() -> None:
    token = jwt.encode(_claims(), SECRET, algorithm="HS256")
    assert _hs256(Clock()).authenticate(f"Bearer {token}") == Identity("carol", frozenset({"read", "write"}))


def test_identity_and_scopes_claims_are_configurable_and_lists_are_accepted() -> None:
    token = jwt.encode(_claims(email="c@example.com", scp=["a", "b", 3]), SECRET, algorithm="HS256")
    auth = _hs256(Clock(), identity_claim="email", scopes_claim="scp")
    assert auth.authenticate(f"Bearer {token}") == Identity("c@example.com", frozenset({"a", "b"}))


def test_static_tokens_and_jwt_work_side_by_side() -> None:
    config = AuthConfig(
        tokens=[TokenConfig(token=SecretStr(ALICE_TOKEN), identity="alice")], jwt=JWTConfig(secret=SecretStr(SECRET))
    )
    auth = Authenticator(config, allow_anonymous=False, clock=Clock())
    assert auth.authenticate(f"Bearer {ALICE_TOKEN}").name == "alice"
    assert auth.authenticate(f"Bearer {jwt.encode(_claims(), SECRET, algorithm='HS256')}").name == "carol"


def test_expiry_is_checked_against_the_injected_clock_with_leeway() -> None:
    clock = Clock()
    auth = _hs256(clock, leeway=30)
    token = f"Bearer {jwt.encode(_claims(exp=NOW + 10), SECRET, algorithm='HS256')}"
    clock.now = NOW + 39
    assert auth.authenticate(token).name == "carol"
    clock.now = NOW + 41
    _refused(auth, token, "expired")


def test_not_before_and_future_issued_at_are_refused() -> None:
    clock = Clock()
    auth = _hs256(clock, leeway=0)
    _refused(auth, f"Bearer {jwt.encode(_claims(nbf=NOW + 60), SECRET, algorithm='HS256')}", "not valid yet")
    _refused(auth, f"Bearer {jwt.encode(_claims(iat=NOW + 60), SECRET, algorithm='HS256')}", "issued in the future")
    clock.now = NOW + 60
    assert auth.authenticate(f"Bearer {jwt.encode(_claims(nbf=NOW + 60), SECRET, algorithm='HS256')}")


def test_token_without_exp_or_identity_or_with_bad_types_is_refused() -> None:
    auth = _hs256(Clock())
    claims = _claims()
    del claims["exp"]
    _refused(auth, f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}", "missing claim 'exp'")
    claims = _claims()
    del claims["sub"]
    _refused(auth, f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}", "claim 'sub' must name the caller")
    _refused(auth, f"Bearer {jwt.encode(_claims(exp='soon'), SECRET, algorithm='HS256')}", "invalid token")


def test_audience_and_issuer_are_enforced_when_configured() -> None:
    auth = _hs256(Clock(), audience="harbor", issuer="https://idp.example.com")
    good = _claims(aud="harbor", iss="https://idp.example.com")
    assert auth.authenticate(f"Bearer {jwt.encode(good, SECRET, algorithm='HS256')}").name == "carol"
    _refused(auth, f"Bearer {jwt.encode(good | {'aud': 'other'}, SECRET, algorithm='HS256')}", "wrong audience")
    _refused(auth, f"Bearer {jwt.encode(good | {'iss': 'https://evil'}, SECRET, algorithm='HS256')}", "wrong issuer")
    no_aud = dict(good)
    del no_aud["aud"]
    _refused(auth, f"Bearer {jwt.encode(no_aud, SECRET, algorithm='HS256')}", "missing claim 'aud'")


def test_token_with_an_audience_is_refused_when_none_is_configured() -> None:
    _refused(_hs256(Clock()), f"Bearer {jwt.encode(_claims(aud='x'), SECRET, algorithm='HS256')}", "wrong audience")


def test_wrong_secret_is_refused() -> None:
    _refused(
        _hs256(Clock()),
        f"Bearer {jwt.encode(_claims(), 'another-secret-0123456789abcdef-0123456789', algorithm='HS256')}",
        "bad signature",
    )


def _unsigned(claims: dict[str, Any], alg: str = "none") -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': alg, 'typ': 'JWT'})}.{part(claims)}."


def test_alg_none_is_refused() -> None:
    auth = _hs256(Clock())
    _refused(auth, f"Bearer {_unsigned(_claims())}", "algorithm not accepted")
    _refused(auth, f"Bearer {_unsigned(_claims(), alg='HS256')}", "bad signature")


def test_malformed_jwt_is_refused() -> None:
    _refused(_hs256(Clock()), "Bearer not.a.jwt", "malformed JWT")


# -- JWT RS256 ----------------------------------------------------------------------------------


def test_rs256_with_a_pem_public_key(rsa_keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]) -> None:
    key, other = rsa_keys
    auth = Authenticator(
        AuthConfig(jwt=JWTConfig(algorithms=["RS256"], public_key=_pem(key))), allow_anonymous=False, clock=Clock()
    )
    assert auth.authenticate(f"Bearer {jwt.encode(_claims(), key, algorithm='RS256')}").name == "carol"
    _refused(auth, f"Bearer {jwt.encode(_claims(), other, algorithm='RS256')}", "bad signature")


def _forge_hs256(secret: bytes, claims: dict[str, Any]) -> str:
    """An HS256 token built by hand (PyJWT refuses to HMAC with a PEM key, an attacker does not)."""
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    signature = hmac.new(secret, header + b"." + body, hashlib.sha256).digest()
    return b".".join([header, body, base64.urlsafe_b64encode(signature).rstrip(b"=")]).decode()


def test_hs256_token_against_an_rs256_only_config_is_refused(
    rsa_keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey],
) -> None:
    key, _ = rsa_keys
    pem = _pem(key)
    auth = Authenticator(
        AuthConfig(jwt=JWTConfig(algorithms=["RS256"], public_key=pem)), allow_anonymous=False, clock=Clock()
    )
    _refused(auth, f"Bearer {_forge_hs256(pem.encode(), _claims())}", "algorithm not accepted")
    _refused(auth, f"Bearer {jwt.encode(_claims(), SECRET, algorithm='HS256')}", "algorithm not accepted")


def test_with_both_algorithms_an_hs256_token_keyed_with_the_public_key_is_refused(
    rsa_keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey],
) -> None:
    key, _ = rsa_keys
    pem = _pem(key)
    config = JWTConfig(algorithms=["HS256", "RS256"], secret=SecretStr(SECRET), public_key=pem)
    auth = Authenticator(AuthConfig(jwt=config), allow_anonymous=False, clock=Clock())
    _refused(auth, f"Bearer {_forge_hs256(pem.encode(), _claims())}", "bad signature")
    assert auth.authenticate(f"Bearer {jwt.encode(_claims(), key, algorithm='RS256')}").name == "carol"
    assert auth.authenticate(f"Bearer {jwt.encode(_claims(), SECRET, algorithm='HS256')}").name == "carol"
    assert auth.authenticate(f"Bearer {_forge_hs256(SECRET.encode(), _claims())}").name == "carol"  # forger is sound


def test_invalid_pem_is_a_construction_error() -> None:
    with pytest.raises(ValueError, match="public_key: not a PEM"):
        Authenticator(AuthConfig(jwt=JWTConfig(algorithms=["RS256"], public_key="nope")), allow_anonymous=False)


def test_jwks_file_with_kid_rotation(tmp_path: Path, rsa_keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]) -> None:
    old, new = rsa_keys
    jwks = tmp_path / "jwks.json"
    jwks.write_bytes(_jwks(("k1", old)))
    clock = Clock()
    auth = Authenticator(
        AuthConfig(jwt=JWTConfig(algorithms=["RS256"], jwks_file=str(jwks))), allow_anonymous=False, clock=clock
    )
    old_token = f"Bearer {jwt.encode(_claims(), old, algorithm='RS256', headers={'kid': 'k1'})}"
    new_token = f"Bearer {jwt.encode(_claims(exp=NOW + 3600), new, algorithm='RS256', headers={'kid': 'k2'})}"
    assert auth.authenticate(old_token).name == "carol"
    jwks.write_bytes(_jwks(("k2", new)))  # the issuer rotates its key
    clock.now += 10
    _refused(auth, new_token, "unknown signing key")  # loaded 10 s ago: no refresh yet
    clock.now += JWKS_REFRESH_SECONDS
    assert auth.authenticate(new_token).name == "carol"
    _refused(auth, old_token, "unknown signing key")  # the old key is gone after the refresh


def test_jwks_url_is_fetched_lazily_cached_and_refreshed_at_most_once_a_minute(
    rsa_keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey],
) -> None:
    key, other = rsa_keys
    fetched: list[str] = []
    documents = [_jwks(("a", key)), _jwks(("a", key), ("b", other))]

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return documents[min(len(fetched), len(documents)) - 1]

    clock = Clock()
    config = JWTConfig(algorithms=["RS256"], jwks_url="https://idp.example.com/jwks.json")
    auth = Authenticator(AuthConfig(jwt=config), allow_anonymous=False, jwks_fetch=fetch, clock=clock)
    assert fetched == []
    token_a = f"Bearer {jwt.encode(_claims(exp=NOW + 3600), key, algorithm='RS256', headers={'kid': 'a'})}"
    token_b = f"Bearer {jwt.encode(_claims(exp=NOW + 3600), other, algorithm='RS256', headers={'kid': 'b'})}"
    for _ in range(5):
        assert auth.authenticate(token_a).name == "carol"
    assert fetched == ["https://idp.example.com/jwks.json"]
    for _ in range(5):
        _refused(auth, token_b, "unknown signing key")
    assert len(fetched) == 1  # unknown kid within the minute: no refetch storm
    clock.now += JWKS_REFRESH_SECONDS
    assert auth.authenticate(token_b).name == "carol"
    assert len(fetched) == 2


def test_jwks_fetch_failure_refuses_without_raising_anything_else(
    rsa_keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey],
) -> None:
    key, _ = rsa_keys

    def fetch(url: str) -> bytes:
        raise OSError("connection refused")

    config = JWTConfig(algorithms=["RS256"], jwks_url="https://idp.example.com/jwks.json")
    auth = Authenticator(AuthConfig(jwt=config), allow_anonymous=False, jwks_fetch=fetch, clock=Clock())
    _refused(
        auth, f"Bearer {jwt.encode(_claims(), key, algorithm='RS256', headers={'kid': 'a'})}", "unknown signing key"
    )


def test_jwks_token_without_kid_uses_the_only_key(
    tmp_path: Path, rsa_keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]
) -> None:
    key, other = rsa_keys
    jwks = tmp_path / "jwks.json"
    jwks.write_bytes(_jwks(("only", key)))
    auth = Authenticator(
        AuthConfig(jwt=JWTConfig(algorithms=["RS256"], jwks_file=str(jwks))), allow_anonymous=False, clock=Clock()
    )
    assert auth.authenticate(f"Bearer {jwt.encode(_claims(), key, algorithm='RS256')}").name == "carol"
    jwks.write_bytes(_jwks(("one", key), ("two", other)))
    auth = Authenticator(
        AuthConfig(jwt=JWTConfig(algorithms=["RS256"], jwks_file=str(jwks))), allow_anonymous=False, clock=Clock()
    )
    _refused(auth, f"Bearer {jwt.encode(_claims(), key, algorithm='RS256')}", "unknown signing key")


def test_a_verified_jwt_is_remembered_until_it_expires_and_never_by_its_text() -> None:
    clock = Clock()
    auth = _hs256(clock)
    header = f"Bearer {jwt.encode(_claims(exp=NOW + 10), SECRET, algorithm='HS256')}"
    assert auth.lookup(header) is None  # not verified yet: the caller must authenticate (maybe off the loop)
    assert auth.authenticate(header).name == "carol"
    assert auth.lookup(header) is not None and auth.lookup(header).name == "carol"  # type: ignore[union-attr]
    assert all(header.split()[1] not in repr(key) for key in auth._verified)  # keyed by digest only
    clock.now += 10 + 31  # past exp + leeway
    assert auth.lookup(header) is None
    _refused(auth, header, "expired")
