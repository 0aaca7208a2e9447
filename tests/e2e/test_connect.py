"""`harbor-connect` as Claude Desktop runs it: the entry `gateway clients --format claude` prints, spawned as is.

The host is the SDK's stdio `Client` (with sampling answered by the test) or the Inspector CLI reading the
printed entry from a config file. Behind it: the real gateway with a token, restarted mid-session; a TCP proxy
that drops a call's stream; translate over legacy SSE; the npm `server-everything` in its Streamable HTTP and
SSE modes; and nothing at all (the remote down at start).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import mcp.types as types
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from tests.conftest import FIXTURE_SERVER, NODE_BIN, ROOT, HubProcess, Translate, free_port, node_env
from tests.e2e.test_sdk_client import _CuttingProxy

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

TOKEN = "connect-test-token-0123456789abcdef"
SERVER_EVERYTHING = (
    ROOT / ".tools" / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
)
CONFIG = f"""
mcpServers:
  everything:
    command: ${{HARBOR_PYTHON}}
    args: ["{FIXTURE_SERVER}"]
gateway:
  host: 127.0.0.1
  port: PORT
  auth:
    tokens:
      - {{token: "${{CONNECT_TEST_TOKEN}}", identity: desktop}}
"""


def claude_entry(config_path: Path, token: str | None = TOKEN) -> dict[str, Any]:
    """The gateway's entry exactly as `clients --format claude` prints it, its placeholder filled in."""
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "clients", "--config", str(config_path), "--format", "claude"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "CONNECT_TEST_TOKEN": TOKEN},
        check=True,
    )
    entry = json.loads(done.stdout)["mcpServers"]["harbor"]
    if token is not None and "env" in entry:
        entry["env"] = {**entry["env"], "HARBOR_TOKEN": token}
    return entry


def host_params(entry: dict[str, Any]) -> StdioServerParameters:
    return StdioServerParameters(command=entry["command"], args=entry["args"], env=entry.get("env"))


def connect_params(*args: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "gateway", "connect", *args])


async def _sampling(context: object, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    prompt = params.messages[0].content
    text = prompt.text if isinstance(prompt, types.TextContent) else "?"
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text=f"host says {text}"), model="host"
    )


def _errors(exc: BaseException) -> list[str]:
    if isinstance(exc, BaseExceptionGroup):
        return [m for inner in exc.exceptions for m in _errors(inner)]
    return [str(exc)]


async def _initialize_error(params: StdioServerParameters) -> str:
    """The error the host's `initialize` got (the SDK raises it wrapped in exception groups)."""
    try:
        async with Client(params, mode="legacy"):
            pass
    except Exception as exc:
        return " | ".join(_errors(exc))
    raise AssertionError("initialize succeeded")


def _text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def _gateway(hub: type[HubProcess], port: int | None = None) -> HubProcess:
    port = port or free_port()
    return hub(CONFIG.replace("PORT", str(port)), env={"CONNECT_TEST_TOKEN": TOKEN})


class FixedPortGateway(HubProcess):
    """The gateway on a port chosen by the test, so it can be killed and started again at the same address."""

    def __init__(self, directory: Path, port: int) -> None:
        self.port, self.url, self.directory = port, f"http://127.0.0.1:{port}", directory
        self.config_path = directory / "harbor.yaml"
        self.config_path.write_text(CONFIG.replace("PORT", str(port)))
        self.start()

    def start(self) -> None:
        argv = [sys.executable, "-m", "gateway", "serve", "--config", str(self.config_path)]
        self._launch(argv, self.directory, {"HARBOR_PYTHON": sys.executable, "CONNECT_TEST_TOKEN": TOKEN})
        self.wait_ready("/readyz?strict=1")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._stderr.close()


@pytest.fixture
def gateway(tmp_path: Path) -> Any:
    g = FixedPortGateway(tmp_path, free_port())
    yield g
    g.stop()


async def test_the_printed_claude_entry_lists_calls_samples_elicits_roots_and_progresses_with_a_token(
    gateway: FixedPortGateway,
) -> None:
    entry = claude_entry(gateway.config_path)
    assert os.path.isabs(entry["command"]) and entry["args"][:3] == ["-m", "gateway", "connect"]
    assert "Authorization: Bearer ${HARBOR_TOKEN}" in entry["args"] and TOKEN not in json.dumps(entry["args"])
    updates: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append(progress)

    async def roots(context: object) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri="file:///tmp/host-root")])

    async def elicitation(context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"username": "desk", "email": "d@example.com"})

    with anyio.fail_after(60):
        async with Client(
            host_params(entry), mode="legacy", sampling_callback=_sampling, list_roots_callback=roots,
            elicitation_callback=elicitation,
        ) as client:  # fmt: skip
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"everything__echo", "everything__test_sampling", "everything__progress"} <= names
            assert _text(await client.call_tool("everything__echo", {"text": "through connect"})) == "through connect"
            sampled = await client.call_tool("everything__test_sampling", {"prompt": "hello"})
            assert _text(sampled) == "LLM response: host says hello"  # the docked server asked; the host answered
            done = await client.call_tool(
                "everything__progress", {"steps": 3, "delay_ms": 20}, progress_callback=on_progress
            )
            assert _text(done) == "done 3 steps" and updates == [1, 2, 3]
            assert json.loads(_text(await client.call_tool("everything__list_roots", {}))) == ["file:///tmp/host-root"]
            elicited = await client.call_tool("everything__test_elicitation", {"message": "who?"})
            assert (
                _text(elicited)
                == 'User response: action=accept, content={"username": "desk", "email": "d@example.com"}'
            )
            resources = (await client.list_resources()).resources
            assert any(str(r.uri).endswith("test://static-text") for r in resources)


async def test_a_wrong_token_fails_initialize_with_the_http_status(gateway: FixedPortGateway) -> None:
    entry = claude_entry(gateway.config_path, token="not-the-token")
    with anyio.fail_after(30):
        message = await _initialize_error(host_params(entry))
    assert "harbor-connect: cannot open a session: HTTP 401" in message and "Authorization" in message


def test_the_inspector_cli_runs_the_printed_entry_from_a_config_file(gateway: FixedPortGateway, tmp_path: Path) -> None:
    config = tmp_path / "claude_desktop_config.json"
    config.write_text(json.dumps({"mcpServers": {"harbor": claude_entry(gateway.config_path)}}))
    base = ["mcp-inspector", "--cli", "--config", str(config), "--server", "harbor", "--format", "json"]
    listed = subprocess.run(
        [*base, "--method", "tools/list"], capture_output=True, text=True, timeout=90, env=node_env(tmp_path)
    )
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "everything__echo" in {
        t["name"] for t in json.loads(listed.stdout[listed.stdout.index("{") :])["result"]["tools"]
    }
    called = subprocess.run(
        [*base, "--method", "tools/call", "--tool-name", "everything__echo", "--tool-arg", "text=inspected"],
        capture_output=True,
        text=True,
        timeout=90,
        env=node_env(tmp_path),
    )
    assert called.returncode == 0, called.stderr[-2000:]
    assert json.loads(called.stdout[called.stdout.index("{") :])["result"]["content"][0]["text"] == "inspected"


async def test_a_gateway_killed_and_restarted_mid_session_serves_the_next_call_without_a_host_restart(
    gateway: FixedPortGateway,
) -> None:
    entry = claude_entry(gateway.config_path)
    async with Client(host_params(entry), mode="legacy") as client:
        with anyio.fail_after(30):
            assert _text(await client.call_tool("everything__echo", {"text": "before"})) == "before"
        async with anyio.create_task_group() as group:
            outcome: dict[str, Any] = {}

            async def in_flight() -> None:
                try:
                    outcome["result"] = await client.call_tool("everything__sleep", {"ms": 30000})
                except MCPError as exc:
                    outcome["error"] = exc

            group.start_soon(in_flight)
            await anyio.sleep(0.5)
            gateway.kill()
            killed = time.monotonic()
            with anyio.fail_after(30):
                while not outcome:
                    await anyio.sleep(0.05)
        # the call in flight got an error, not silence (resumption was tried, the session was gone)
        assert "error" in outcome, outcome
        assert "harbor-connect" in str(outcome["error"]) and time.monotonic() - killed < 25
        gateway.start()
        with anyio.fail_after(30):
            assert _text(await client.call_tool("everything__echo", {"text": "after"})) == "after"
            assert "everything__echo" in {t.name for t in (await client.list_tools()).tools}


class _TolerantCuttingProxy(_CuttingProxy):
    """The same cut, but a connection the peers reset while closing ends quietly instead of failing the test."""

    async def _handle(self, client: anyio.abc.SocketStream) -> None:
        try:
            await super()._handle(client)
        except* (OSError, anyio.BrokenResourceError):
            pass


async def test_a_call_whose_stream_drops_mid_call_completes_by_resumption(
    tmp_path: Path, hub: type[HubProcess]
) -> None:
    h = _gateway(hub)
    proxy = _TolerantCuttingProxy(h.port)
    updates: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append(progress)

    async with anyio.create_task_group() as group:
        await group.start(proxy.serve)
        params = connect_params(
            f"http://127.0.0.1:{proxy.port}/mcp",
            "--header",
            "Authorization: Bearer ${T}",
            "--log-level",
            "info",
            "--protocol-era",
            "legacy",  # resumption exists in the handshake era; the modern one cancels (next test)
        )
        params.env = {"T": TOKEN}
        with anyio.fail_after(40):
            async with Client(params, mode="legacy") as client:
                result = await client.call_tool(
                    "everything__progress", {"steps": 4, "delay_ms": 300}, progress_callback=on_progress
                )
        group.cancel_scope.cancel()
    assert proxy.cut == 1
    assert _text(result) == "done 4 steps" and updates == [1, 2, 3, 4]  # each progress once, nothing lost


async def test_a_modern_call_whose_stream_drops_errors_clearly_and_the_next_call_works(
    tmp_path: Path, hub: type[HubProcess]
) -> None:
    h = _gateway(hub)
    proxy = _TolerantCuttingProxy(h.port)
    async with anyio.create_task_group() as group:
        await group.start(proxy.serve)
        params = connect_params(
            f"http://127.0.0.1:{proxy.port}/mcp", "--header", "Authorization: Bearer ${T}", "--protocol-era", "modern"
        )
        params.env = {"T": TOKEN}
        with anyio.fail_after(40):
            async with Client(params, mode="legacy") as client:

                async def ignore(progress: float, total: float | None, message: str | None) -> None:
                    return None

                with pytest.raises(MCPError, match="cannot resume"):  # progress flows, then the stream is cut
                    await client.call_tool(
                        "everything__progress", {"steps": 4, "delay_ms": 300}, progress_callback=ignore
                    )
                assert _text(await client.call_tool("everything__echo", {"text": "after"})) == "after"
        group.cancel_scope.cancel()
    assert proxy.cut == 1


async def test_an_unreachable_remote_fails_initialize_saying_so() -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"
    started = time.monotonic()
    with anyio.fail_after(30):
        message = await _initialize_error(connect_params(url))
    assert f"harbor-connect: cannot open a session: cannot reach {url}" in message and "ConnectError" in message
    assert time.monotonic() - started < 20


async def test_connect_falls_back_to_legacy_sse_and_keeps_every_feature(shared_translate: Translate) -> None:
    with anyio.fail_after(40):
        async with Client(
            connect_params(shared_translate.url + "/sse"), mode="legacy", sampling_callback=_sampling
        ) as client:
            assert _text(await client.call_tool("echo", {"text": "sse"})) == "sse"
            assert _text(await client.call_tool("test_sampling", {"prompt": "p"})) == "LLM response: host says p"
            updates: list[float] = []

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                updates.append(progress)

            await client.call_tool("progress", {"steps": 2, "delay_ms": 5}, progress_callback=on_progress)
            assert updates == [1, 2]


async def test_a_cancelled_call_gets_no_reply_and_the_session_goes_on(shared_translate: Translate) -> None:
    with anyio.fail_after(40):
        async with Client(connect_params(shared_translate.url + "/mcp"), mode="legacy") as client:
            with anyio.move_on_after(0.5):
                await client.call_tool("sleep", {"ms": 20000})  # the SDK sends notifications/cancelled
            assert _text(await client.call_tool("echo", {"text": "still here"})) == "still here"


async def test_the_request_timeout_answers_an_error_and_cancels_upstream(shared_translate: Translate) -> None:
    with anyio.fail_after(40):
        async with Client(connect_params(shared_translate.url + "/mcp", "--timeout", "1"), mode="legacy") as client:
            started = time.monotonic()
            with pytest.raises(MCPError, match="no reply within --timeout 1 s"):
                await client.call_tool("sleep", {"ms": 5000})
            assert time.monotonic() - started < 3
            assert _text(await client.call_tool("echo", {"text": "next"})) == "next"


class _NodeEverything:
    def __init__(self, mode: str, tmp_path: Path) -> None:
        self.port = free_port()
        self.log = (tmp_path / f"everything-{mode}.log").open("wb")
        env = {**node_env(tmp_path), "PORT": str(self.port)}
        self.proc = subprocess.Popen(
            [str(NODE_BIN / "node"), str(SERVER_EVERYTHING), mode], env=env, stdout=self.log, stderr=self.log
        )
        _wait_for_port(self.port)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


@pytest.mark.node
@pytest.mark.parametrize(("mode", "path"), [("streamableHttp", "/mcp"), ("sse", "/sse")])
async def test_connect_in_front_of_the_npm_server_everything(mode: str, path: str, tmp_path: Path) -> None:
    remote = _NodeEverything(mode, tmp_path)
    try:
        with anyio.fail_after(60):
            async with Client(connect_params(f"http://127.0.0.1:{remote.port}{path}"), mode="legacy") as client:
                names = {t.name for t in (await client.list_tools()).tools}
                assert {"echo", "get-sum"} <= names
                assert "42" in _text(await client.call_tool("get-sum", {"a": 40, "b": 2}))
                echoed = await client.call_tool("echo", {"message": f"via {mode}"})
                assert f"via {mode}" in _text(echoed)
    finally:
        remote.stop()


class _SDKRemote:
    """The SDK's own Streamable HTTP server (tests/fixtures/sdk_http_server.py) on a free port."""

    def __init__(self, tmp_path: Path, *tls: str) -> None:
        self.port = free_port()
        self.log = (tmp_path / "sdk-remote.log").open("wb")
        fixture = ROOT / "tests" / "fixtures" / "sdk_http_server.py"
        argv = [sys.executable, str(fixture), str(self.port), *tls]
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log)
        _wait_for_port(self.port)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


async def test_a_call_whose_server_closes_its_stream_to_poll_completes_with_last_event_id(tmp_path: Path) -> None:
    """SSE polling (SEP-1699) against the SDK's own server: it closes the call's stream after the first
    progress and expects the client back with Last-Event-ID; a clean close is no fault, the rest arrives."""
    remote = _SDKRemote(tmp_path)
    updates: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append(progress)

    try:
        with anyio.fail_after(40):
            async with Client(connect_params(f"http://127.0.0.1:{remote.port}/mcp"), mode="legacy") as client:
                assert _text(await client.call_tool("echo", {"text": "sdk"})) == "sdk"
                result = await client.call_tool("polled", {"steps": 4, "delay_ms": 200}, progress_callback=on_progress)
        assert _text(result) == "polled 4 steps" and updates == [1, 2, 3, 4]
    finally:
        remote.stop()


@pytest.fixture
def sdk_remote(tmp_path: Path) -> Any:
    remote = _SDKRemote(tmp_path)
    yield remote
    remote.stop()


@pytest.mark.parametrize("era", ["modern", "auto"])
async def test_a_2026_era_remote_serves_a_handshake_era_host_through_connect(sdk_remote: _SDKRemote, era: str) -> None:
    """The host initializes as desktop hosts do; connect speaks 2026-07-28 to the SDK's server (server/discover,
    per-request _meta): calls, progress, an input_required round answered by the host's sampling, ping, a
    resource read, and list_changed through subscriptions/listen."""
    changes: list[str] = []

    async def on_message(message: object) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changes.append(message.method)

    updates: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append(progress)

    url = f"http://127.0.0.1:{sdk_remote.port}/mcp"
    with anyio.fail_after(40):
        async with Client(
            connect_params(url, "--protocol-era", era), mode="legacy", sampling_callback=_sampling,
            message_handler=on_message,
        ) as client:  # fmt: skip
            assert _text(await client.call_tool("era", {})) == "2026-07-28"
            assert _text(await client.call_tool("echo", {"text": "modern"})) == "modern"
            assert _text(await client.call_tool("ask", {"prompt": "q"})) == "model said: host says q"
            done = await client.call_tool("polled", {"steps": 3, "delay_ms": 50}, progress_callback=on_progress)
            assert _text(done) == "polled 3 steps" and updates == [1, 2, 3]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the SDK may warn that 2026-07-28 has no ping
                await client.send_ping()  # connect answers it itself
            assert _text(await client.call_tool("grow", {})) == "grown"
            with anyio.fail_after(10):
                while not changes:
                    await anyio.sleep(0.05)
            assert "grown" in {t.name for t in (await client.list_tools()).tools}


async def test_the_handshake_era_is_chosen_when_asked(sdk_remote: _SDKRemote) -> None:
    url = f"http://127.0.0.1:{sdk_remote.port}/mcp"
    with anyio.fail_after(30):
        async with Client(
            connect_params(url, "--protocol-era", "legacy"), mode="legacy", sampling_callback=_sampling
        ) as client:
            assert _text(await client.call_tool("era", {})) == "2025-11-25"
            assert _text(await client.call_tool("ask", {"prompt": "q"})) == "model said: host says q"


async def test_modern_against_a_handshake_only_remote_fails_initialize_saying_so(translate: type[Translate]) -> None:
    t = translate("--expose-sse")  # legacy HTTP+SSE only: nothing answers a 2026-07-28 POST
    with anyio.fail_after(30):
        message = await _initialize_error(connect_params(t.url + "/sse", "--protocol-era", "modern"))
    assert "2026-07-28" in message, message


async def test_a_multi_megabyte_message_crosses_both_ways_as_one_line(shared_translate: Translate) -> None:
    text = "x" * 3_000_000
    with anyio.fail_after(40):
        async with Client(connect_params(shared_translate.url + "/mcp"), mode="legacy") as client:
            assert _text(await client.call_tool("echo", {"text": text})) == text


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a certificate it signed for 127.0.0.1: (ca.pem, cert.pem, key.pem)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "harbor test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


async def test_tls_is_verified_and_a_private_ca_is_trusted_with_ca_file(tmp_path: Path) -> None:
    ca, cert, key = _certificates(tmp_path)
    remote = _SDKRemote(tmp_path, str(cert), str(key))
    url = f"https://127.0.0.1:{remote.port}/mcp"
    try:
        with anyio.fail_after(30):
            refused = await _initialize_error(connect_params(url))
            assert "cannot reach" in refused and "CERTIFICATE_VERIFY_FAILED" in refused
            async with Client(connect_params(url, "--ca-file", str(ca)), mode="legacy") as client:
                assert _text(await client.call_tool("echo", {"text": "over tls"})) == "over tls"
    finally:
        remote.stop()
