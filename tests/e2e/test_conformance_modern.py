"""The official conformance suite's frozen 2026-07-28 requirement set against every front of one stdio server.

`conformance server --requirements 2026-07-28` (0.2.0-alpha.12) must pass every scored server scenario and
exit 0 — no expected-failures file — against translate and against the gateway's per-server endpoint, each
wrapping the test everything-server in both of its modes: as it is (it answers `server/discover`, so the
bridge speaks 2026-07-28 to it and passes its input rounds through) and `--legacy-only` (a pre-2026 server:
the bridge initializes it and turns its real sampling / elicitation / roots requests into input rounds, and
its -32021 into the client's). Then, on the same running front, `--suite all --spec-version 2025-11-25` must
still pass: the modern run leaves input rounds nobody retries (the suite abandons several on purpose), and
they must not disturb the handshake-era sessions that follow.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import EVERYTHING_CMD, FIXTURE_SERVER, HubProcess, Translate, node_env

pytestmark = [pytest.mark.e2e, pytest.mark.node]

MODES = {"modern-capable": [], "legacy-only": ["--legacy-only"]}


def _passes(url: str, tmp_path: Path, *selection: str) -> None:
    argv = ["conformance", "server", "--url", url, *selection]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=node_env(tmp_path), cwd=tmp_path)
    summary = done.stdout[done.stdout.find("=== SUMMARY ===") :]
    assert done.returncode == 0, f"{' '.join(selection)}:\n{summary or done.stderr[-3000:]}"


def _both_eras(url: str, tmp_path: Path) -> None:
    _passes(url, tmp_path, "--requirements", "2026-07-28")
    _passes(url, tmp_path, "--suite", "all", "--spec-version", "2025-11-25")


@pytest.mark.parametrize("mode", MODES)
def test_translate_meets_2026_07_28_and_stays_2025_conformant(
    translate: type[Translate], mode: str, tmp_path: Path
) -> None:
    t = translate(command=" ".join([EVERYTHING_CMD, *MODES[mode]]))
    _both_eras(t.url + "/mcp", tmp_path)


@pytest.mark.parametrize("mode", MODES)
def test_one_docked_server_meets_2026_07_28_and_stays_2025_conformant(
    hub: type[HubProcess], mode: str, tmp_path: Path
) -> None:
    args = ", ".join(f'"{a}"' for a in [str(FIXTURE_SERVER), *MODES[mode]])
    h = hub(f"mcpServers:\n  everything:\n    command: ${{HARBOR_PYTHON}}\n    args: [{args}]\n")
    _both_eras(h.url + "/servers/everything/mcp", tmp_path)
