"""MemoryStore runs the store contract of eventgraph.testing, plus its own invariant checks."""

from __future__ import annotations

import pytest

from eventgraph import MemoryStore, StoreError
from eventgraph.testing.contract import StoreContract, contract_event


class TestMemoryStore(StoreContract):
    def make_store(self) -> MemoryStore:
        return MemoryStore()


def test_check_invariants_detects_corruption() -> None:
    """The invariant check can fail: corrupt an index by hand and it must notice."""
    store = MemoryStore()
    store.add_events([contract_event("$a"), contract_event("$b", ["$a"], depth=2)])
    store.check_invariants()
    store._rooms["!contract:test"].forward.add("$a")
    with pytest.raises(StoreError, match="forward extremities"):
        store.check_invariants()


def test_len_and_contains() -> None:
    store = MemoryStore()
    store.add_events([contract_event("$a")])
    assert len(store) == 1
    assert "$a" in store
    assert "$b" not in store
    assert store.room_ids() == ("!contract:test",)
    assert store.room_event_count("!contract:test") == 1
