"""MemoryStore runs the store contract of eventgraph.testing, plus its own invariant checks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


@settings(max_examples=60)
@given(data=st.data())
def test_flagged_facts_are_the_outliers_and_rejected(data: st.DataObject) -> None:
    """``get_flagged_facts`` gives exactly the facts ``get_facts`` gives for the outliers and
    rejected events among the IDs asked (unknown IDs omitted), through writes that store
    outliers, reject events and connect outliers, rejected or not (memory.py rule 9)."""
    store = MemoryStore()
    n = data.draw(st.integers(2, 12))
    ids = [f"$e{i}" for i in range(n)]
    events = [contract_event(e, [ids[i - 1]] if i else [], depth=i + 1) for i, e in enumerate(ids)]
    for _ in range(data.draw(st.integers(1, 6))):
        chosen = data.draw(st.lists(st.sampled_from(range(n)), min_size=1, unique=True))
        batch = [events[i] for i in sorted(chosen)]
        flags = [data.draw(st.sampled_from(["plain", "outlier", "rejected"])) for _ in batch]
        pairs = list(zip(batch, flags, strict=True))
        store.add_events(
            batch,
            outliers=[e.event_id for e, f in pairs if f == "outlier"],
            rejected={e.event_id: "r" for e, f in pairs if f == "rejected"},
        )
        store.check_invariants()
        asked = data.draw(st.lists(st.sampled_from([*ids, "$unknown"]), unique=True))
        expected = {
            i: f for i, f in store.get_facts(asked).items() if f.outlier or f.rejected is not None
        }
        assert dict(store.get_flagged_facts(asked)) == expected


def test_check_invariants_detects_a_lost_flag() -> None:
    store = MemoryStore()
    store.add_events([contract_event("$a")], rejected={"$a": "r"})
    store.check_invariants()
    store._flagged.clear()
    with pytest.raises(StoreError, match="outliers and rejected"):
        store.check_invariants()
