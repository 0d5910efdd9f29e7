"""SqliteStore runs the store contract (in memory and on disk), plus its own durability tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventgraph import StoreError
from eventgraph.stores.sqlite import SqliteStore
from eventgraph.testing.contract import StoreContract, contract_event


class TestSqliteStoreInMemory(StoreContract):
    def make_store(self) -> SqliteStore:
        return SqliteStore(":memory:")


class TestSqliteStoreOnDisk(StoreContract):
    @pytest.fixture(autouse=True)
    def _dir(self, tmp_path: Path) -> None:
        self._tmp = tmp_path
        self._n = 0

    def make_store(self) -> SqliteStore:
        self._n += 1
        return SqliteStore(self._tmp / f"store{self._n}.db")


def test_check_invariants_detects_corruption() -> None:
    """The invariant check can fail: corrupt a derived table by hand and it must notice."""
    store = SqliteStore(":memory:")
    store.add_events([contract_event("$a"), contract_event("$b", ["$a"], depth=2)])
    store.check_invariants()
    store._db().execute("INSERT INTO forward_extremities VALUES ('$a', 1)")
    with pytest.raises(StoreError, match="forward extremities"):
        store.check_invariants()
