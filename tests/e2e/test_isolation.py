"""Safe by default for a team: what a child can see of the gateway's environment, and what one identity can
see of another's — through the real gateway, real children and two real bearer tokens."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest

from tests.conftest import FIXTURE_SERVER, ROOT, HubProcess, Translate
from tests.e2e.rawclient import Streamable, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

SECRET = "sk-ant-not-for-children-0123456789"
FIXTURE = f"""
    command: ${{HARBOR_PYTHON}}
    args: ["{FIXTURE_SERVER}"]"""
TOKENS = {"ALICE_TOKEN": "alice-token-0123456789", "BOB_TOKEN": "bob-token-0123456789ab"}
AUTH = """
  auth:
    tokens:
      - {token: "${ALICE_TOKEN}", identity: alice}
      - {token: "${BOB_TOKEN}", identity: bob}
"""


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        yield session


def _as(http: aiohttp.ClientSession, url: str, who: str | None) -> Streamable:
    client = Streamable(http, url)
    if who:
        client.headers = {"authorization": f"Bearer {TOKENS[who.upper() + '_TOKEN']}"}
    return client


def _structured(reply: dict[str, Any]) -> Any:
    return reply["result"].get("structuredContent")


# --- what a child sees -------------------------------------------------------------------------------------


async def test_the_shipped_config_docks_no_tool_that_reads_the_environment(
    hub: type[HubProcess], http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    text = (ROOT / "config" / "harbor.yaml").read_text()
    text = text.replace("${HARBOR_ROOT}/.venv/", f"{tmp_path}/")
    h = hub(text, env={"ANTHROPIC_API_KEY": SECRET})
    client = _as(http, h.url + "/mcp", None)
    await client.initialize()
    _, _, listed = await client.post({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    names = [t["name"] for t in listed[-1]["result"]["tools"]]
    servers = {name.split("__", 1)[0] for name in names}
    assert servers == {"data-analysis", "eval", "sql"}, servers  # the repo's real servers, no test fixture
    assert not [n for n in names if "env" in n.lower().replace("environment", "")], names
    printed = subprocess.run(
        [sys.executable, "-m", "gateway", "clients", "--config", str(ROOT / "config" / "harbor.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert printed.returncode == 0 and "everything_server" not in printed.stdout and "fixtures" not in printed.stdout


async def test_a_child_sees_only_the_allow_list_and_what_its_entry_names(
    hub: type[HubProcess], http: aiohttp.ClientSession
) -> None:
    servers = f"""
  plain:{FIXTURE}
  forwarded:{FIXTURE}
    env_passthrough: [ANTHROPIC_API_KEY]
  named:{FIXTURE}
    env: {{MY_KEY: "${{ANTHROPIC_API_KEY}}"}}
"""
    env = {
        "ANTHROPIC_API_KEY": SECRET,
        "HARBOR_ROOT": str(ROOT),
        "LC_ALL": "C.UTF-8",
        "AWS_SECRET_ACCESS_KEY": "x" * 20,
    }
    h = hub(f"mcpServers:{servers}\ngateway:\n  host: 127.0.0.1\n", env=env)
    client = _as(http, h.url + "/mcp", None)
    await client.initialize()

    async def getenv(server: str, name: str) -> str:
        return text_of((await client.call(f"{server}-{name}", f"{server}__getenv", {"name": name}))[-1])

    assert await getenv("plain", "ANTHROPIC_API_KEY") == ""
    assert await getenv("plain", "AWS_SECRET_ACCESS_KEY") == ""
    assert await getenv("plain", "HARBOR_ROOT") == ""  # the gateway's own variables are withheld too
    assert await getenv("plain", "HOME") and await getenv("plain", "PATH")
    assert await getenv("plain", "LC_ALL") == "C.UTF-8"
    assert await getenv("forwarded", "ANTHROPIC_API_KEY") == SECRET  # asked for it by name
    assert await getenv("named", "MY_KEY") == SECRET and await getenv("named", "ANTHROPIC_API_KEY") == ""
    assert SECRET not in h.log()


async def test_translate_forwards_only_what_it_is_told(translate: type[Translate], http: aiohttp.ClientSession) -> None:
    env = {"ANTHROPIC_API_KEY": SECRET, "OTHER_SECRET": "y" * 20}
    for flags, expected in (((), ""), (("--env-passthrough", "ANTHROPIC_API_KEY"), SECRET)):
        t = translate(*flags, env=env)
        client = _as(http, t.url + "/mcp", None)
        await client.initialize()
        assert text_of((await client.call(1, "getenv", {"name": "ANTHROPIC_API_KEY"}))[-1]) == expected
        assert text_of((await client.call(2, "getenv", {"name": "OTHER_SECRET"}))[-1]) == ""


# --- what an identity sees ---------------------------------------------------------------------------------


def _analysis_config(tmp_path: Path) -> str:
    return f"""
mcpServers:
  data-analysis:
    command: ${{HARBOR_PYTHON}}
    args: ["-m", "data_analysis_server"]
    env:
      DATA_ANALYSIS_ROOTS: {ROOT}/mcp-servers/python/data_analysis_server/sample_data
    session_mode: per-identity
gateway:
  host: 127.0.0.1
{AUTH}
  audit:
    path: {tmp_path}/audit.jsonl
"""


async def test_two_identities_never_see_each_others_datasets(
    hub: type[HubProcess], http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    h = hub(_analysis_config(tmp_path), env=TOKENS)
    alice, bob = _as(http, h.url + "/mcp", "alice"), _as(http, h.url + "/mcp", "bob")
    await alice.initialize()
    await bob.initialize()
    with anyio.fail_after(90):
        loaded_a, loaded_b = await asyncio.gather(  # both at once: two children, no waiting on each other
            alice.call(1, "data-analysis__load_dataset", {"source": "sales.csv", "name": "ds1_alice_private"}),
            bob.call(1, "data-analysis__load_dataset", {"source": "experiment.csv", "name": "bobs_own"}),
        )
    alice_id = _structured(loaded_a[-1])["dataset_id"]
    assert _structured(loaded_b[-1])["dataset_id"]
    listed = json.dumps((await bob.call(2, "data-analysis__list_datasets", {}))[-1])
    assert "ds1_alice_private" not in listed and alice_id not in listed and "bobs_own" in listed
    for n, (tool, arguments) in enumerate(
        [
            ("data-analysis__sql", {"query": "SELECT * FROM ds1_alice_private"}),
            ("data-analysis__describe_dataset", {"dataset_id": alice_id}),
            ("data-analysis__drop_dataset", {"dataset_id": alice_id}),
        ]
    ):
        reply = (await bob.call(10 + n, tool, arguments))[-1]
        assert reply.get("error") or reply["result"].get("isError"), reply  # nothing of alice's to find
        said = json.dumps(reply.get("error") or reply["result"]["content"])
        for echoed in re.findall(r"\w+", " ".join(arguments.values())):  # bob's own words may be quoted back
            said = said.replace(echoed, "<his>")
        assert "alice" not in said and "sales" not in said, said
    mine = json.dumps((await alice.call(3, "data-analysis__list_datasets", {}))[-1])
    assert "ds1_alice_private" in mine and "bobs_own" not in mine  # alice's data intact, bob's not hers
    with anyio.fail_after(5):
        while len((tmp_path / "audit.jsonl").read_text().splitlines()) < 7:
            await asyncio.sleep(0.05)
    lines = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert {line["identity"]: line["child"].split(" (")[0] for line in lines} == {
        "alice": "identity alice",
        "bob": "identity bob",
    }


async def test_identity_children_are_shared_by_its_sessions_capped_and_reaped(
    hub: type[HubProcess], http: aiohttp.ClientSession
) -> None:
    tokens = {**TOKENS, "CAROL_TOKEN": "carol-token-0123456789a"}
    config = f"""
mcpServers:
  probe:{FIXTURE}
    session_mode: per-identity
    max_identities: 2
    identity_idle_timeout: 1
    header_to_env: {{X-Team: TEAM}}
gateway:
  host: 127.0.0.1
{AUTH}      - {{token: "${{CAROL_TOKEN}}", identity: carol}}
"""
    h = hub(config, env=tokens)
    alice1, alice2, bob = (_as(http, h.url + "/mcp", w) for w in ("alice", "alice", "bob"))
    alice1.headers["x-team"] = "red"
    carol = Streamable(http, h.url + "/mcp")
    carol.headers = {"authorization": f"Bearer {tokens['CAROL_TOKEN']}"}
    for client in (alice1, alice2, bob, carol):
        await client.initialize()
    pid = [text_of((await c.call(1, "probe__whoami", {}))[-1]) for c in (alice1, alice2, bob)]
    assert pid[0] == pid[1] != pid[2]  # one child per identity, shared by that identity's sessions
    assert text_of((await alice2.call(2, "probe__getenv", {"name": "TEAM"}))[-1]) == "red"  # from alice's header
    assert text_of((await bob.call(2, "probe__getenv", {"name": "TEAM"}))[-1]) == ""  # never in another's child
    refused = (await carol.call(1, "probe__whoami", {}))[-1]
    assert refused["error"]["code"] == -32013 and "max_identities" in refused["error"]["message"]
    for client in (alice1, alice2, bob):
        headers = {**client.headers, "mcp-session-id": client.session_id or ""}
        async with http.delete(client.url, headers=headers) as resp:
            assert resp.status == 200
    await asyncio.sleep(2.5)  # idle past identity_idle_timeout: reaped
    assert "identity_child_stopped" in h.log() and "reason=idle" in h.log()
    assert text_of((await carol.call(2, "probe__whoami", {}))[-1]).isdigit()  # room again
