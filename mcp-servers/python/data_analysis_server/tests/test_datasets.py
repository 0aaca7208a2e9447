"""Every supported format, format inference, inline data, reader-option allow-list, registry eviction."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_analysis_server.config import Settings
from data_analysis_server.datasets import infer_format, parse, read_source
from data_analysis_server.errors import DataFormatError, DatasetNotFoundError, InvalidArgumentError, LimitExceededError
from data_analysis_server.registry import Registry, table_name

FRAME = pd.DataFrame({"x": [1, 2, 3], "label": ["a", "b", "c"], "v": [0.5, np.nan, 2.5]})


@pytest.mark.parametrize(
    ("filename", "writer"),
    [
        ("f.csv", lambda f, p: f.to_csv(p, index=False)),
        ("f.tsv", lambda f, p: f.to_csv(p, index=False, sep="\t")),
        ("f.json", lambda f, p: f.to_json(p, orient="records")),
        ("f.jsonl", lambda f, p: f.to_json(p, orient="records", lines=True)),
        ("f.parquet", lambda f, p: f.to_parquet(p)),
        ("f.xlsx", lambda f, p: f.to_excel(p, index=False)),
    ],
)
def test_each_format_round_trips_with_inferred_format(
    settings: Settings, tmp_path: Path, filename: str, writer
) -> None:
    writer(FRAME, tmp_path / filename)
    frame, _ = read_source(filename, None, None, None, settings)
    assert frame["x"].tolist() == [1, 2, 3]
    assert frame["label"].tolist() == ["a", "b", "c"]
    assert frame["v"].isna().tolist() == [False, True, False]


# Tables where pandas' reader makes choices (missing markers, blank and repeated header names, dates,
# time zones, booleans, quoted newlines, all-missing columns, ragged rows) that our direct Arrow reader
# must reproduce or hand back to pandas.
CSV_CASES = {
    "types": "a,b,c\n1,2.5,x\n3,,y\n",
    "missing markers": "a,b,c,d\n1,NA,x,\nN/A,2,null,\nnan,3,None,\n#N/A,4,<NA>,\n",
    "header names": ",a,a,b,a.1,\n1,2,3,4,5,6\n",
    "dates and booleans": "d,t,b\n2024-01-02,2024-01-02 10:00:00,true\n2024-02-03,2024-03-04T11:12:13,false\n",
    "time zones": "t\n2024-01-02T10:00:00Z\n2024-01-03T10:00:00+02:00\n",
    "quoting": 'a,b\n"x, y",1\n"line\nbreak",2\n"é ü 中",3\n',
    "blank strings": "a,b\n,1\nq,2\n",
    "ragged rows": "a,b\n1,2\n3\n4,5\n",
}


@pytest.mark.parametrize("text", CSV_CASES.values(), ids=list(CSV_CASES))
@pytest.mark.parametrize("as_path", [True, False], ids=["path", "buffer"])
def test_csv_reads_exactly_like_pandas(tmp_path: Path, text: str, as_path: bool) -> None:
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    try:
        want = pd.read_csv(path, engine="pyarrow")
    except ValueError:  # pyarrow refuses ragged rows; the C engine is the reference then
        want = pd.read_csv(path, engine="c")
    got = parse(path if as_path else io.BytesIO(text.encode()), "csv", {})
    pd.testing.assert_frame_equal(got, want)


def test_format_is_sniffed_from_content_when_the_name_says_nothing() -> None:
    assert infer_format("data", "", b"PAR1....") == "parquet"
    assert infer_format("data", "", b'[{"a": 1}]') == "json"
    assert infer_format("data", "", b'{"a": 1}\n{"a": 2}') == "jsonl"
    assert infer_format("data", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet") == "excel"
    assert infer_format("data", "", b"a,b\n1,2") == "csv"


def test_inline_csv_and_json_records(settings: Settings) -> None:
    csv, _ = read_source(None, "a,b\n1,x\n2,y\n", None, None, settings)
    records, _ = read_source(None, [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}], None, None, settings)
    text_json, _ = read_source(None, '[{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]', None, None, settings)
    for frame in (csv, records, text_json):
        assert frame.to_dict("list") == {"a": [1, 2], "b": ["x", "y"]}


def test_iso_dates_become_datetime64(settings: Settings) -> None:
    frame, _ = read_source("sales.csv", None, None, None, settings)
    assert pd.api.types.is_datetime64_any_dtype(frame["date"])


def test_exactly_one_of_source_or_data(settings: Settings) -> None:
    with pytest.raises(InvalidArgumentError, match="exactly one"):
        read_source(None, None, None, None, settings)
    with pytest.raises(InvalidArgumentError, match="exactly one"):
        read_source("sales.csv", "a\n1", None, None, settings)


def test_reader_options_outside_the_allow_list_are_refused(settings: Settings) -> None:
    with pytest.raises(InvalidArgumentError, match="Unsupported option"):
        read_source(None, "a\n1\n", "csv", {"converters": {"a": "eval"}}, settings)


def test_reader_options_are_applied(settings: Settings) -> None:
    frame, _ = read_source(None, "a;b\n1,5;2\n", "csv", {"sep": ";", "decimal": ","}, settings)
    assert frame.to_dict("list") == {"a": [1.5], "b": [2]}


def test_malformed_json_names_the_problem(settings: Settings) -> None:
    with pytest.raises(DataFormatError, match="JSON"):
        read_source(None, '[{"a": 1}', "json", None, settings)


def test_inline_size_cap(settings: Settings) -> None:
    small = dataclasses.replace(settings, max_inline_bytes=10)
    with pytest.raises(LimitExceededError, match="cap"):
        read_source(None, "a\n" + "1\n" * 100, None, None, small)


def test_registry_evicts_least_recently_used_and_says_so() -> None:
    frame = pd.DataFrame({"x": np.arange(1000, dtype="float64")})  # 8 kB
    registry = Registry(budget_bytes=20_000)
    first = registry.add(frame, "first", "a.csv")
    second = registry.add(frame, "second", "b.csv")
    registry.get(first.dataset_id)  # first is now the most recently used
    registry.add(frame, "third", "c.csv")
    assert registry.get(first.dataset_id).name == "first"
    with pytest.raises(DatasetNotFoundError, match="evicted.*load it again from 'b.csv'"):
        registry.get(second.dataset_id)


def test_registry_refuses_a_frame_larger_than_the_budget() -> None:
    with pytest.raises(LimitExceededError, match="DATA_ANALYSIS_MEMORY_BUDGET"):
        Registry(budget_bytes=100).add(pd.DataFrame({"x": np.arange(1000)}), "big", "x")


def test_unknown_dataset_lists_known_ids() -> None:
    registry = Registry(budget_bytes=10**6)
    ds = registry.add(FRAME, "known", "x")
    with pytest.raises(DatasetNotFoundError, match=ds.dataset_id):
        registry.get("ds99_nope")


def test_table_names_are_sql_identifiers() -> None:
    assert table_name("My Data-2024.csv") == "my_data_2024_csv"
    assert table_name("2024 sales") == "t_2024_sales"
    assert table_name("$$$") == "dataset"


def test_duplicate_names_get_distinct_table_names() -> None:
    registry = Registry(budget_bytes=10**6)
    assert [registry.add(FRAME, "sales", "x").name for _ in range(3)] == ["sales", "sales_2", "sales_3"]
