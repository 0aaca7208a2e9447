"""Config loading: every section parses, Claude Desktop blocks paste unchanged, errors name the key and the fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.config import (
    DEFAULT_REDACT_KEYS,
    ConfigError,
    HarborConfig,
    MiB,
    ServerConfig,
    load_config,
    parse_config,
)

FULL_YAML = """\
mcpServers:
  github:
    command: npx
    args: ["-y", "@modelcontextprotocol/server-github"]
    env:
      GITHUB_TOKEN: ${GITHUB_TOKEN}
      LOG_LEVEL: ${LOG_LEVEL:-info}
    cwd: work
    session_mode: per-session
    request_timeout: 60
    max_sessions: 8
    prefix: gh
    tools:
      allow: ["*issue*", "search_*"]
      deny: ["delete_*"]
  remote:
    url: https://mcp.example.com/mcp
    type: streamable-http
    headers:
      Authorization: Bearer ${REMOTE_KEY}
  legacy:
    url: http://localhost:9000/sse
    type: sse
    enabled: false
gateway:
  host: 0.0.0.0
  port: 8080
  auth:
    tokens:
      - token: ${ALICE_TOKEN}
        identity: alice
        scopes: [admin]
    jwt:
      algorithms: [HS256, RS256]
      secret: ${JWT_SECRET}
      jwks_file: keys/jwks.json
      identity_claim: email
      scopes_claim: scp
      audience: harbor
      issuer: https://issuer.example.com
      leeway: 10
  policies:
    - identities: ["alice", "ops-*"]
      servers: ["*"]
    - scopes: [reader]
      servers: [gh]
      tools: ["search_*"]
  rate_limits:
    per_identity: {rate: 5, burst: 10}
    per_identity_tool: {rate: 1, burst: 2}
    overrides:
      alice: {rate: 50, burst: 100}
  allow_origins: ["https://app.example.com"]
  cors: ["https://app.example.com"]
  audit:
    path: logs/audit.jsonl
    include_arguments: true
    redact_keys: [password]
  max_message_bytes: 1048576
  keep_alive: 5
  allow_unauthenticated: false
"""

ENV = {
    "GITHUB_TOKEN": "ghp_secret_value_1234",
    "REMOTE_KEY": "remote-key",
    "ALICE_TOKEN": "alice-token-0123456789",
    "JWT_SECRET": "jwt-secret-0123456789-0123456789",
}


def _write(tmp_path: Path, text: str, name: str = "harbor.yaml") -> Path:
    if "keys/jwks.json" in text:  # the full example's JWKS must exist: a missing one is a config error
        (tmp_path / "keys").mkdir(exist_ok=True)
        (tmp_path / "keys" / "jwks.json").write_text('{"keys": []}')
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _problems(data: Any, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, Path("/base"), environ or {})
    return caught.value.problems


def test_full_example_with_every_section_parses(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, FULL_YAML), ENV)
    github = config.mcpServers["github"]
    assert github.kind == "stdio"
    assert github.args == ["-y", "@modelcontextprotocol/server-github"]
    assert github.env == {"GITHUB_TOKEN": "ghp_secret_value_1234", "LOG_LEVEL": "info"}
    assert github.session_mode == "per-session" and github.max_sessions == 8
    assert github.tools.allow == ["*issue*", "search_*"] and github.tools.deny == ["delete_*"]
    assert config.mcpServers["remote"].kind == "http"
    assert config.mcpServers["remote"].headers == {"Authorization": "Bearer remote-key"}
    assert config.mcpServers["legacy"].kind == "sse" and not config.mcpServers["legacy"].enabled
    gateway = config.gateway
    assert (gateway.host, gateway.port, gateway.keep_alive, gateway.max_message_bytes) == ("0.0.0.0", 8080, 5, MiB)
    assert gateway.auth is not None and gateway.auth.jwt is not None
    assert gateway.auth.tokens[0].token.get_secret_value() == "alice-token-0123456789"
    assert gateway.auth.jwt.jwks_file == str(tmp_path / "keys" / "jwks.json")
    assert gateway.auth.jwt.identity_claim == "email" and gateway.auth.jwt.leeway == 10
    assert [rule.scopes for rule in gateway.policies] == [[], ["reader"]]
    assert gateway.rate_limits is not None and gateway.rate_limits.overrides["alice"].burst == 100
    assert gateway.audit.path == str(tmp_path / "logs" / "audit.jsonl")
    assert gateway.audit.redact_keys == ["password"]
    assert config.slugs() == {"github": "gh", "remote": "remote", "legacy": "legacy"}


def test_defaults_are_loopback_4444_no_auth_and_full_redaction(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "mcpServers: {a: {command: x}}\n"), {})
    gateway = config.gateway
    assert (gateway.host, gateway.port, gateway.auth, gateway.allow_unauthenticated) == ("127.0.0.1", 4444, None, False)
    assert gateway.max_message_bytes == 16 * MiB and gateway.keep_alive == 15
    assert gateway.audit.redact_keys == DEFAULT_REDACT_KEYS and gateway.audit.path is None
    server = config.mcpServers["a"]
    assert (server.session_mode, server.request_timeout, server.enabled) == ("shared", 300, True)
    assert server.tools.allow == ["*"] and server.tools.deny == []


def test_claude_desktop_json_block_pastes_unchanged(tmp_path: Path) -> None:
    claude = {
        "mcpServers": {
            "filesystem": {
                "command": "npx",
                "args": ["-y", "@modelcontextprotocol/server-filesystem", "/Users/me/Desktop"],
            },
            "git": {"command": "uvx", "args": ["mcp-server-git"], "env": {"GIT_AUTHOR": "me"}},
        }
    }
    config = load_config(_write(tmp_path, json.dumps(claude, indent=2), "claude_desktop_config.json"), {})
    assert config.model_dump(include={"mcpServers"}, exclude_defaults=True) == claude


def test_snake_case_mcp_servers_key_is_accepted() -> None:
    config = parse_config({"mcp_servers": {"a": {"command": "x"}}}, Path("/base"), {})
    assert list(config.mcpServers) == ["a"]


def test_variables_expand_with_defaults_empty_values_and_escapes() -> None:
    data = {
        "mcpServers": {
            "a": {
                "command": "${CMD}",
                "args": ["--token=${TOKEN}", "${X:-d}", "${EMPTY:-fallback}", "${EMPTY}", "$${LITERAL}"],
                "env": {"${NOT_A_KEY}": "${X:-}"},
            }
        },
        "gateway": {"port": "${PORT:-9999}"},
    }
    config = parse_config(data, Path("/base"), {"CMD": "run", "TOKEN": "abc", "EMPTY": ""})
    server = config.mcpServers["a"]
    assert server.command == "run"
    assert server.args == ["--token=abc", "d", "fallback", "", "${LITERAL}"]
    assert server.env == {"${NOT_A_KEY}": ""}
    assert config.gateway.port == 9999


def test_missing_variable_error_names_the_key_path_and_the_variable(tmp_path: Path) -> None:
    text = "mcpServers:\n  github:\n    command: npx\n    env:\n      GITHUB_TOKEN: ${GITHUB_TOKEN}\n"
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, text), {})
    assert caught.value.problems == [
        "mcpServers.github.env.GITHUB_TOKEN: environment variable GITHUB_TOKEN is not set "
        "(set it, or write ${GITHUB_TOKEN:-default})"
    ]
    assert str(tmp_path / "harbor.yaml") in str(caught.value)


def test_malformed_variable_reference_is_reported() -> None:
    problems = _problems({"mcpServers": {"a": {"command": "x", "args": ["${1BAD}", "${open"]}}})
    assert problems == [
        "mcpServers.a.args[0]: malformed variable reference; write ${NAME} or ${NAME:-default}",
        "mcpServers.a.args[1]: malformed variable reference; write ${NAME} or ${NAME:-default}",
    ]


def test_typo_key_is_rejected_with_a_suggestion() -> None:
    problems = _problems({"mcpServers": {"github": {"comand": "npx"}}})
    assert "mcpServers.github.comand: unknown key; did you mean 'command'?" in problems


def test_every_problem_is_reported_at_once() -> None:
    data = {
        "mcpServers": {"a": {"command": "x", "tools": {"alow": []}}, "b": {"url": "ftp://host"}},
        "gateway": {
            "prot": 1,
            "port": "${PORT}",
            "policies": [{"tool": ["*"]}],
            "rate_limits": {"per_identity": {"rate": 0}},
        },
    }
    problems = _problems(data, {})
    assert set(problems) == {
        "gateway.port: environment variable PORT is not set (set it, or write ${PORT:-default})",
        "mcpServers.a.tools.alow: unknown key; did you mean 'allow'?",
        "mcpServers.b: `url` must be an http:// or https:// URL",
        "gateway.prot: unknown key; did you mean 'port'?",
        "gateway.policies[0].tool: unknown key; did you mean 'tools'?",
        "gateway.rate_limits.per_identity.rate: Input should be greater than 0",
        "gateway.rate_limits.per_identity.burst: required key is missing",
    }


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ({"command": "x", "url": "http://h/mcp"}, "set exactly one of `command`"),
        ({"args": ["x"]}, "set exactly one of `command`"),
        ({"url": "localhost:8000"}, "`url` must be an http:// or https:// URL"),
        ({"url": "http://h/mcp", "type": "stdio"}, "`type: stdio` needs `command`"),
        ({"command": "x", "type": "sse"}, "`type: sse` needs `url`"),
        ({"command": "x", "request_timeout": 0}, "greater than 0"),
        ({"command": "x", "max_sessions": 0}, "greater than 0"),
        ({"command": "x", "session_mode": "pooled"}, "'shared', 'per-session' or 'per-identity'"),
        ({"command": "x", "env": {"DEBUG": True}}, "mcpServers.s.env.DEBUG: must be a string (quote it in YAML)"),
    ],
)
def test_invalid_server_entries_are_rejected_with_a_reason(server: dict[str, Any], message: str) -> None:
    problems = _problems({"mcpServers": {"s": server}})
    assert len(problems) == 1 and message in problems[0], problems
    assert problems[0].startswith("mcpServers.s")


def test_transport_kind_follows_command_url_and_type() -> None:
    assert ServerConfig(command="x").kind == "stdio"
    assert ServerConfig(command="x", type="stdio").kind == "stdio"
    assert ServerConfig(url="https://h/mcp").kind == "http"
    assert ServerConfig(url="https://h/mcp", type="streamable-http").kind == "http"
    assert ServerConfig(url="http://h/sse", type="sse").kind == "sse"


def test_numbers_in_args_and_env_become_strings() -> None:
    config = parse_config({"mcpServers": {"a": {"command": "x", "args": [1, 2.5], "env": {"PORT": 80}}}}, Path("/"), {})
    assert config.mcpServers["a"].args == ["1", "2.5"] and config.mcpServers["a"].env == {"PORT": "80"}


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    text = (
        "mcpServers:\n  a: {command: x, cwd: ../srv}\n  b: {command: y, cwd: /abs}\n"
        "gateway: {audit: {path: audit.jsonl}}\n"
    )
    (tmp_path / "conf").mkdir()
    config = load_config(_write(tmp_path / "conf", text), {})
    assert config.mcpServers["a"].cwd == str(tmp_path / "srv")
    assert config.mcpServers["b"].cwd == "/abs"
    assert config.gateway.audit.path == str(tmp_path / "conf" / "audit.jsonl")


def test_slug_collision_between_server_names_is_reported_naming_both() -> None:
    problems = _problems({"mcpServers": {"my server": {"command": "a"}, "my-server": {"command": "b"}}})
    assert problems == [
        "mcpServers: servers 'my server' and 'my-server' both publish as 'my-server'; rename one or set `prefix`"
    ]


def test_prefix_resolves_a_slug_collision() -> None:
    data = {"mcpServers": {"my server": {"command": "a"}, "my-server": {"command": "b", "prefix": "other"}}}
    assert parse_config(data, Path("/"), {}).slugs() == {"my server": "my-server", "my-server": "other"}


def test_at_least_one_server_is_required() -> None:
    assert _problems({"mcpServers": {}}) == ["mcpServers: needs at least one server"]
    assert _problems({"gateway": {}}) == ["mcpServers: required key is missing"]
    assert _problems(["not", "a", "mapping"]) == ["(top level): must be a mapping with an `mcpServers` key"]


def test_auth_validation_short_token_duplicate_token_and_jwt_keys() -> None:
    token = "t" * 16
    auth = {
        "tokens": [
            {"token": "short", "identity": "a"},
            {"token": token, "identity": "b"},
            {"token": token, "identity": "c"},
        ],
        "jwt": {"algorithms": ["RS256"]},
    }
    problems = _problems({"mcpServers": {"a": {"command": "x"}}, "gateway": {"auth": auth}})
    assert set(problems) == {
        "gateway.auth.tokens[0].token: must be at least 16 characters long",
        "gateway.auth.jwt: RS256 needs exactly one of `public_key`, `jwks_file` or `jwks_url`",
    }
    del auth["tokens"][0]
    auth["jwt"] = {"algorithms": ["HS256"]}
    problems = _problems({"mcpServers": {"a": {"command": "x"}}, "gateway": {"auth": auth}})
    assert set(problems) == {
        "gateway.auth.tokens: entry [1] repeats the token of entry [0]; each token needs its own",
        "gateway.auth.jwt: HS256 needs `secret` (pass it as ${ENV_VAR})",
    }
    assert not any("tttt" in problem for problem in problems)


def test_hs256_secret_shorter_than_32_bytes_is_rejected() -> None:
    auth = {"jwt": {"secret": "too-short"}}
    problems = _problems({"mcpServers": {"a": {"command": "x"}}, "gateway": {"auth": auth}})
    assert problems == ["gateway.auth.jwt: `secret` must be at least 32 bytes long for HS256 (RFC 7518 section 3.2)"]


def test_secrets_never_appear_in_repr_str_or_dumps(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, FULL_YAML), ENV)
    for text in (repr(config), str(config), config.model_dump_json()):
        assert ENV["ALICE_TOKEN"] not in text
        assert ENV["JWT_SECRET"] not in text
    for text in (repr(config), str(config), repr(config.mcpServers["github"])):
        assert ENV["GITHUB_TOKEN"] not in text
        assert ENV["REMOTE_KEY"] not in text
    assert config.mcpServers["github"].env["GITHUB_TOKEN"] == ENV["GITHUB_TOKEN"]  # still there for the child


def test_short_secret_values_are_not_echoed_in_errors() -> None:
    problems = _problems(
        {
            "mcpServers": {"a": {"command": "x"}},
            "gateway": {"auth": {"tokens": [{"token": "hunter2", "identity": "a"}]}},
        }
    )
    assert "hunter2" not in "".join(problems)


def test_unreadable_file_syntax_error_and_empty_file_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "missing.yaml", {})
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, "mcpServers:\n  a: {command: x\n  b: 1\n"), {})
    assert caught.value.problems[0].startswith("line 3, column")
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, '{"mcpServers": {"a": {"command": "x",}}'), {})
    assert caught.value.problems[0].startswith("line 1, column")
    with pytest.raises(ConfigError, match="the file is empty"):
        load_config(_write(tmp_path, "# nothing\n"), {})


def test_a_server_defined_twice_is_reported_with_its_line(tmp_path: Path) -> None:
    text = "mcpServers:\n  a: {command: x}\n  b: {command: y}\n  a: {command: z}\n"
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, text), {})
    assert caught.value.problems == ["line 4, column 3: duplicate key 'a'; each key may appear once per mapping"]


def test_environ_defaults_to_the_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARBOR_TEST_CMD", "from-os")
    config = load_config(_write(tmp_path, "mcpServers: {a: {command: '${HARBOR_TEST_CMD}'}}\n"))
    assert config.mcpServers["a"].command == "from-os"


def test_config_models_construct_directly_without_path_resolution() -> None:
    config = HarborConfig(mcpServers={"a": ServerConfig(command="x", cwd="rel")})
    assert config.mcpServers["a"].cwd == "rel"


def test_oauth_settings_are_checked_with_a_reason_for_each_problem() -> None:
    def oauth(**settings: object) -> list[str]:
        return _problems({"mcpServers": {"a": {"command": "x"}}, "gateway": {"auth": {"oauth": settings}}})

    assert oauth(resource="https://harbor.example.com/mcp", authorization_servers=[]) == [
        "gateway.auth.oauth.resource: `resource` must be the gateway's public origin (e.g. https://harbor.example.com),"
        " without a path: each endpoint's resource is derived from it (…/mcp, …/servers/<name>/mcp)",
        "gateway.auth.oauth.authorization_servers: List should have at least 1 item after validation, not 0",
    ]
    assert oauth(resource="http://harbor.example.com", authorization_servers=["https://a.example.com?x=1"]) == [
        "gateway.auth.oauth.resource: `resource` must use https:// (plain http:// is only for loopback hosts)",
        "gateway.auth.oauth.authorization_servers: entry [0] must not have a query or a fragment",
    ]
    assert oauth(
        resource="https://h.example.com",
        authorization_servers=["https://a.example.com", "https://b.example.com"],
        jwks_url="https://a.example.com/keys",
    ) == [
        "gateway.auth.oauth: `jwks_url` names one key set but several `authorization_servers` are listed; drop it,"
        " and each server's keys are found from its metadata (jwks_uri)"
    ]
    assert oauth(
        resource="https://h.example.com",
        authorization_servers=["https://a.example.com"],
        algorithms=["HS256"],
        scopes_supported=["read"],
        required_scopes=["write"],
    ) == [
        "gateway.auth.oauth.algorithms[0]: Input should be 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512',"
        " 'ES256', 'ES384', 'ES512' or 'EdDSA'",
    ]
    settings = {
        "resource": "HTTPS://H.Example.com/",
        "authorization_servers": ["https://a.example.com"],
        "audience": "x",
    }
    config = parse_config({"mcpServers": {"a": {"command": "x"}}, "gateway": {"auth": {"oauth": settings}}}, Path("."))
    assert config.gateway.auth is not None and config.gateway.auth.oauth is not None
    assert (config.gateway.auth.oauth.resource, config.gateway.auth.oauth.audience) == ("https://h.example.com", ["x"])


def test_a_missing_jwks_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    text = (
        "mcpServers: {a: {command: x}}\ngateway:\n  auth:\n    jwt: {algorithms: [RS256], jwks_file: keys/none.json}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, text), ENV)
    assert "gateway.auth.jwt.jwks_file" in str(caught.value) and "none.json does not exist" in str(caught.value)


def test_cline_style_entries_paste_in_with_their_meaning(tmp_path: Path) -> None:
    text = """
mcpServers:
  paused: {command: x, disabled: true, autoApprove: [read_file]}
  slow: {command: y, timeout: 120, transportType: stdio}
  remote: {url: "https://example.com/sse", transportType: sse}
"""
    config = load_config(_write(tmp_path, text), ENV)
    assert config.mcpServers["paused"].enabled is False and config.mcpServers["paused"].autoApprove == ["read_file"]
    assert config.mcpServers["slow"].request_timeout == 120 and config.mcpServers["remote"].kind == "sse"
    with pytest.raises(ConfigError, match="`enabled` and `disabled` disagree"):
        load_config(_write(tmp_path, "mcpServers: {a: {command: x, disabled: true, enabled: true}}"), ENV)


def test_header_to_env_needs_a_child_of_its_own(tmp_path: Path) -> None:
    text = "mcpServers: {a: {command: x, header_to_env: {X-Token: TOKEN}}}"
    with pytest.raises(ConfigError, match="per-session` or `per-identity"):
        load_config(_write(tmp_path, text), ENV)
    ok = "mcpServers: {a: {command: x, session_mode: per-identity, header_to_env: {X-Token: TOKEN}, env_passthrough: [LANGUAGE]}}"
    assert load_config(_write(tmp_path, ok), ENV).mcpServers["a"].max_identities == 64


@pytest.mark.parametrize(
    "shipped", ["config/harbor.yaml", "deploy/k8s/base/harbor.yaml", "starter"], ids=["make-serve", "k8s", "init"]
)
def test_shipped_configs_confine_the_eval_server_to_its_own_data_folder(shipped: str, tmp_path: Path) -> None:
    """The eval server reads JSONL by a client's path from MCP_EVAL_DATA_ROOTS, by default its working directory —
    the gateway's own folder when docked. (data-analysis defaults to its package's sample data: safe unset.)"""
    from gateway.hub.starter import KNOWN_SERVERS, render

    root = Path(__file__).resolve().parents[2]
    starter = render(list(KNOWN_SERVERS), python="/usr/bin/python3")
    path = _write(tmp_path, starter) if shipped == "starter" else root / shipped
    environ = {"HARBOR_ROOT": str(root), "HARBOR_PYTHON": "python", "HOME": str(tmp_path), "POD_IP": "10.0.0.1"}
    environ["HARBOR_TOKEN"] = "t" * 32
    config = load_config(path, environ)
    [evals] = [s for s in config.mcpServers.values() if "mcp_eval_server" in s.args]
    folders = [Path(p) for p in evals.env.get("MCP_EVAL_DATA_ROOTS", "").split(":") if p]
    assert folders and all(p.is_absolute() and p.resolve() not in (root, tmp_path) for p in folders), folders
