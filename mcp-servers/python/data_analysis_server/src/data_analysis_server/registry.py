"""In-memory dataset registry with an LRU byte budget.

Data stays server-side and is referred to by id; tools return summaries, never whole tables.
When the total size passes the budget the least recently used datasets are evicted, and a later
lookup of an evicted id says so explicitly (rather than "unknown id"), so the caller knows to reload.
The registry is shared by tool calls running on worker threads, hence the lock. It never copies
frames: callers must treat a stored frame as read-only and derive new datasets instead.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import pandas as pd

from .errors import DatasetNotFoundError, LimitExceededError

_NAME_RE = re.compile(r"[^A-Za-z0-9_]+")


@dataclass
class Dataset:
    """One registered frame plus where it came from."""

    dataset_id: str
    name: str
    frame: pd.DataFrame
    source: str
    nbytes: int
    encoding: str | None = None
    created: float = field(default_factory=time.time)


def table_name(name: str) -> str:
    """A SQL-safe identifier derived from a user-facing name ('my data.csv' -> 'my_data_csv')."""
    cleaned = _NAME_RE.sub("_", name).strip("_").lower() or "dataset"
    return f"t_{cleaned}" if cleaned[0].isdigit() else cleaned


class Registry:
    """Thread-safe id -> Dataset map with least-recently-used eviction beyond `budget_bytes`."""

    def __init__(self, budget_bytes: int) -> None:
        self._budget = budget_bytes
        self._items: OrderedDict[str, Dataset] = OrderedDict()
        self._evicted: dict[str, str] = {}
        self._lock = threading.Lock()
        self._counter = 0

    def add(self, frame: pd.DataFrame, name: str, source: str, encoding: str | None = None) -> Dataset:
        """Register a frame under a fresh id; evicts older datasets if the budget requires.

        Raises:
            LimitExceededError: the frame alone is larger than the whole budget.
        """
        nbytes = int(frame.memory_usage(deep=True).sum())
        if nbytes > self._budget:
            raise LimitExceededError(
                f"Dataset needs {nbytes / 2**20:.0f} MiB but the memory budget is {self._budget / 2**20:.0f} MiB; "
                "load fewer columns/rows or raise DATA_ANALYSIS_MEMORY_BUDGET."
            )
        with self._lock:
            self._counter += 1
            dataset_id = f"ds{self._counter}_{table_name(name)}"[:60]
            ds = Dataset(dataset_id, self._unique_name_locked(table_name(name)), frame, source, nbytes, encoding)
            self._items[dataset_id] = ds
            self._evict_locked(keep=dataset_id)
            return ds

    def _unique_name_locked(self, base: str) -> str:
        """SQL table names must not collide: a second 'sales' becomes 'sales_2'."""
        taken = {d.name for d in self._items.values()}
        name, k = base, 1
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        return name

    def _evict_locked(self, keep: str) -> None:
        total = sum(d.nbytes for d in self._items.values())
        while total > self._budget and len(self._items) > 1:
            oldest_id = next(i for i in self._items if i != keep)
            old = self._items.pop(oldest_id)
            total -= old.nbytes
            self._evicted[oldest_id] = (
                f"Dataset {oldest_id!r} was evicted to stay under the memory budget "
                f"({self._budget / 2**20:.0f} MiB); load it again from {old.source!r}."
            )

    def get(self, dataset_id: str) -> Dataset:
        """Return the dataset and mark it recently used.

        Raises:
            DatasetNotFoundError: unknown id (lists known ids) or evicted id (says how to reload).
        """
        with self._lock:
            if dataset_id in self._items:
                self._items.move_to_end(dataset_id)
                return self._items[dataset_id]
            if dataset_id in self._evicted:
                raise DatasetNotFoundError(self._evicted[dataset_id])
            known = ", ".join(self._items) or "none loaded yet; call load_dataset first"
            raise DatasetNotFoundError(f"Unknown dataset_id {dataset_id!r}. Known datasets: {known}")

    def drop(self, dataset_id: str) -> Dataset:
        """Remove a dataset.

        Raises:
            DatasetNotFoundError: the id is not registered.
        """
        ds = self.get(dataset_id)
        with self._lock:
            self._items.pop(dataset_id, None)
        return ds

    def all(self) -> list[Dataset]:
        """Snapshot of registered datasets, oldest first."""
        with self._lock:
            return list(self._items.values())

    def total_bytes(self) -> int:
        with self._lock:
            return sum(d.nbytes for d in self._items.values())
