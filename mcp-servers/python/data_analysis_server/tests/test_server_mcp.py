"""The MCP face: schemas, error mapping, resources, prompt, progress, registry tools (in-process client)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import anyio
import numpy as np
import pandas as pd
import pytest
from mcp import Client

from conftest import call, call_error
from data_analysis_server import server
from data_analysis_server.service import AnalysisService

pytestmark = pytest.mark.anyio

EXPECTED_TOOLS = {
    "load_dataset",
    "list_datasets",
    "describe_dataset",
    "drop_dataset",
    "profile",
    "correlate",
    "test_hypothesis",
    "regress",
    "time_series",
    "query",
    "sql",
    "transform",
    "plot",
}


async def test_every_tool_publishes_input_and_output_schemas(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == EXPECTED_TOOLS
    for tool in tools.values():
        assert tool.input_schema["type"] == "object"
        assert tool.output_schema is not None and tool.output_schema["type"] == "object", tool.name
        assert tool.description
        assert "ctx" not in tool.input_schema.get("properties", {})


async def test_unknown_column_error_lists_columns(client: Client) -> None:
    ds = (await call(client, "load_dataset", source="experiment.csv"))["dataset_id"]
    text = await call_error(client, "regress", dataset_id=ds, y="score", x=["grp"])
    assert "Unknown column(s) 'grp'" in text and "'group'" in text
    assert "Traceback" not in text


async def test_unknown_and_dropped_datasets_are_explained(client: Client) -> None:
    ds = (await call(client, "load_dataset", source="experiment.csv"))["dataset_id"]
    assert (await call(client, "drop_dataset", dataset_id=ds))["dropped"] is True
    text = await call_error(client, "profile", dataset_id=ds)
    assert "Unknown dataset_id" in text and "load_dataset" in text


async def test_schema_violations_are_tool_errors(client: Client) -> None:
    text = await call_error(client, "correlate", dataset_id="x", method="pearsonn")
    assert "method" in text


async def test_path_outside_roots_is_a_tool_error(client: Client) -> None:
    text = await call_error(client, "load_dataset", source="/etc/passwd")
    assert "outside the allowed roots" in text


async def test_registry_tools(client: Client) -> None:
    a = await call(client, "load_dataset", source="experiment.csv")
    b = await call(client, "load_dataset", source="sales.csv", name="sales")
    listed = await call(client, "list_datasets")
    assert [d["dataset_id"] for d in listed["datasets"]] == [a["dataset_id"], b["dataset_id"]]
    assert listed["total_bytes"] == a["memory_bytes"] + b["memory_bytes"]
    described = await call(client, "describe_dataset", dataset_id=b["dataset_id"])
    assert described["rows"] == 730 and len(described["preview"]) == 5
    price = next(c for c in described["schema"] if c["name"] == "price")
    assert price["missing"] == 8


async def test_resources_and_prompt(client: Client) -> None:
    ds = (await call(client, "load_dataset", source="experiment.csv"))["dataset_id"]
    schema = await client.read_resource(f"dataset://{ds}/schema")
    assert '"score"' in schema.contents[0].text
    preview = await client.read_resource(f"dataset://{ds}/preview")
    assert '"user_id": 1' in preview.contents[0].text
    prompt = await client.get_prompt("explore_dataset", {"dataset_id": ds})
    assert ds in prompt.messages[0].content.text


async def test_progress_is_reported_when_requested(client: Client) -> None:
    ds = (await call(client, "load_dataset", source="sales.csv"))["dataset_id"]
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    result = await client.call_tool("profile", {"dataset_id": ds}, progress_callback=on_progress)
    assert not result.is_error
    assert seen[0] == (0, None, "profiling…")
    progress, total, message = seen[-1]
    assert message == "profiling done" and total == progress  # the end: progress reaches its total
    assert [p for p, _, _ in seen] == sorted(p for p, _, _ in seen)


async def test_a_long_call_reports_progress_while_it_runs(
    client: Client, mcp_service: AnalysisService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Heartbeats while the work runs, so a progress-extended timeout (SDK, gateway) keeps waiting."""
    rng = np.random.default_rng(0)
    pd.DataFrame(rng.normal(size=(400_000, 6)), columns=list("abcdef")).to_csv(tmp_path / "big.csv", index=False)
    monkeypatch.setattr(mcp_service, "settings", replace(mcp_service.settings, progress_interval_s=0.005))
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    result = await client.call_tool("load_dataset", {"source": "big.csv"}, progress_callback=on_progress)
    assert not result.is_error
    beats = [(p, m) for p, t, m in seen[1:-1] if t is None]
    assert beats and all(m is not None and m.startswith("loading… ") for _, m in beats)
    assert [p for p, _, _ in seen] == sorted(p for p, _, _ in seen) and seen[-1][1] == seen[-1][0]


async def test_a_failing_call_with_progress_is_still_a_clear_tool_error(client: Client) -> None:
    result = await client.call_tool(
        "profile", {"dataset_id": "ds_missing"}, progress_callback=lambda *_: anyio.sleep(0)
    )
    assert result.is_error and "ds_missing" in result.content[0].text  # type: ignore[union-attr]


async def test_text_summary_is_short_and_structured_content_is_complete(client: Client) -> None:
    ds = (await call(client, "load_dataset", source="sales.csv"))["dataset_id"]
    result = await client.call_tool("profile", {"dataset_id": ds})
    assert len(result.content[0].text) < 2000
    assert {c["name"] for c in result.structured_content["columns"]} == {
        "date",
        "region",
        "units",
        "price",
        "promo",
        "revenue",
    }


def test_server_module_never_prints() -> None:
    import inspect

    assert "print(" not in inspect.getsource(server)


async def test_library_rejections_become_actionable_tool_errors(client: Client) -> None:
    flat = "t,v\n" + "\n".join(f"2024-01-{d:02d},5" for d in range(1, 29))
    ds = (await call(client, "load_dataset", data=flat))["dataset_id"]
    text = await call_error(
        client, "time_series", dataset_id=ds, time_column="t", value_column="v", operation="stationarity"
    )
    assert "constant" in text and "Traceback" not in text
