"""Settings: the per-identity database path (runs are per-user state)."""

from __future__ import annotations

from pathlib import Path

from mcp_eval_server.config import load_settings


def test_identity_placeholder_gives_each_identity_its_own_database(tmp_path: Path) -> None:
    pattern = str(tmp_path / "eval-{identity}.sqlite3")
    alice = load_settings({"MCP_EVAL_DB": pattern, "HARBOR_IDENTITY": "alice"}).db_path
    bob = load_settings({"MCP_EVAL_DB": pattern, "HARBOR_IDENTITY": "bob"}).db_path
    nobody = load_settings({"MCP_EVAL_DB": pattern}).db_path
    odd = load_settings({"MCP_EVAL_DB": pattern, "HARBOR_IDENTITY": "../x y"}).db_path
    odd2 = load_settings({"MCP_EVAL_DB": pattern, "HARBOR_IDENTITY": "../x_y"}).db_path
    assert (alice.name, bob.name, nobody.name) == ("eval-alice.sqlite3", "eval-bob.sqlite3", "eval-anonymous.sqlite3")
    assert odd.parent == tmp_path and "/" not in odd.name.removeprefix("eval-") and odd != odd2
    assert load_settings({"MCP_EVAL_DB": str(tmp_path / "one.sqlite3"), "HARBOR_IDENTITY": "x"}).db_path.name == (
        "one.sqlite3"
    )
