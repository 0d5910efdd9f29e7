"""The store contract: one test suite every store must pass (a *verified fake*).

Subclass :class:`StoreContract` in a pytest module, name the subclass ``Test...``, and implement
:meth:`StoreContract.make_store`; pytest then runs every contract test against your store::

    from eventgraph import MemoryStore
    from eventgraph.testing.contract import StoreContract

    class TestMemoryStore(StoreContract):
        def make_store(self):
            return MemoryStore()

The suite needs pytest (the ``test`` extra). It checks the protocols of
:mod:`eventgraph.protocols`: batch reads with unknown IDs absent, children, forward and backward
extremities (by the definitions in :class:`eventgraph.protocols.GraphReader`), outliers and
their connection, rejected and soft-failed events, arrival numbers, atomic refusal of bad
batches, and independence from insertion order. If the store has a ``check_invariants()``
method it is called after every write.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Protocol

import pytest

from ..errors import StoreError
from ..events.event import Event
from ..protocols import EventStore, EventWriter

__all__ = ["ContractStore", "StoreContract", "contract_event"]

ROOM = "!contract:test"
OTHER_ROOM = "!other:test"


class ContractStore(EventStore, EventWriter, Protocol):
    """What the contract suite needs of a store: every read protocol and the writer."""


def contract_event(
    event_id: str,
    prev: Sequence[str] = (),
    *,
    depth: int = 1,
    room_id: str = ROOM,
    state_key: str | None = None,
    version: str = "10",
    body: str = "",
) -> Event:
    """A small trusted event with a readable ID, for store tests."""
    pdu: dict[str, Any] = {
        "type": "m.room.message" if state_key is None else "m.test.state",
        "room_id": room_id,
        "sender": "@u:test",
        "content": {"body": body},
        "depth": depth,
        "origin_server_ts": depth,
        "prev_events": list(prev),
        "auth_events": [],
    }
    if state_key is not None:
        pdu["state_key"] = state_key
    return Event.from_trusted_pdu(pdu, version, event_id=event_id)


def _diamond() -> list[Event]:
    """a <- b, a <- c, (b, c) <- d, d <- e: a fork that merges."""
    return [
        contract_event("$a", depth=1),
        contract_event("$b", ["$a"], depth=2),
        contract_event("$c", ["$a"], depth=2),
        contract_event("$d", ["$b", "$c"], depth=3),
        contract_event("$e", ["$d"], depth=4),
    ]


class StoreContract:
    """The contract tests. Subclasses implement :meth:`make_store`."""

    def make_store(self) -> ContractStore:
        """Return a new, empty store."""
        raise NotImplementedError

    # -- helpers ------------------------------------------------------------------------------

    def _add(self, store: ContractStore, events: Sequence[Event], **flags: Any) -> None:
        store.add_events(events, **flags)
        self._check(store)

    @staticmethod
    def _check(store: object) -> None:
        check = getattr(store, "check_invariants", None)
        if check is not None:
            check()

    @staticmethod
    def _snapshot(store: ContractStore, ids: Sequence[str]) -> tuple[object, ...]:
        rooms = (ROOM, OTHER_ROOM)
        return (
            dict(store.get_events(ids)),
            dict(store.get_facts(ids)),
            dict(store.get_children(ids)),
            [store.forward_extremities(r) for r in rooms],
            [dict(store.backward_extremities(r)) for r in rooms],
            [store.room_version_of(r) for r in rooms],
        )

    # -- reads --------------------------------------------------------------------------------

    def test_empty_store_answers_empty(self) -> None:
        store = self.make_store()
        assert dict(store.get_events(["$x"])) == {}
        assert dict(store.get_facts([])) == {}
        assert dict(store.get_children(["$x"])) == {}
        assert tuple(store.forward_extremities(ROOM)) == ()
        assert dict(store.backward_extremities(ROOM)) == {}
        assert store.room_version_of(ROOM) is None

    def test_batch_reads_omit_unknown_ids(self) -> None:
        store = self.make_store()
        events = _diamond()
        self._add(store, events)
        got = store.get_events(["$a", "$nope", "$e"])
        assert set(got) == {"$a", "$e"}
        assert got["$e"] == events[4]
        facts = store.get_facts(["$d", "$nope"])
        assert set(facts) == {"$d"}
        assert facts["$d"].prev_event_ids == ("$b", "$c")
        assert facts["$d"].depth == 3
        assert facts["$d"].room_id == ROOM
        assert not facts["$d"].outlier
        assert facts["$d"].rejected is None
        assert not facts["$d"].soft_failed

    def test_children_and_extremities_of_a_fork(self) -> None:
        store = self.make_store()
        self._add(store, _diamond()[:3])
        assert dict(store.get_children(["$a", "$b"])) == {"$a": ("$b", "$c")}
        assert tuple(store.forward_extremities(ROOM)) == ("$b", "$c")
        self._add(store, _diamond()[3:])
        assert tuple(store.forward_extremities(ROOM)) == ("$e",)
        assert dict(store.get_children(["$b", "$c", "$e"])) == {"$b": ("$d",), "$c": ("$d",)}

    def test_backward_extremities_take_the_smallest_child_depth(self) -> None:
        store = self.make_store()
        self._add(
            store,
            [
                contract_event("$x", ["$gap1"], depth=10),
                contract_event("$y", ["$gap1", "$gap2"], depth=7),
            ],
        )
        assert dict(store.backward_extremities(ROOM)) == {"$gap1": 7, "$gap2": 7}
        self._add(store, [contract_event("$gap1", depth=6)])
        assert dict(store.backward_extremities(ROOM)) == {"$gap2": 7}

    def test_rooms_are_separate(self) -> None:
        store = self.make_store()
        self._add(store, [contract_event("$a"), contract_event("$z", room_id=OTHER_ROOM)])
        assert tuple(store.forward_extremities(ROOM)) == ("$a",)
        assert tuple(store.forward_extremities(OTHER_ROOM)) == ("$z",)
        version = store.room_version_of(OTHER_ROOM)
        assert version is not None
        assert version.identifier == "10"

    def test_arrival_numbers_increase_in_storage_order(self) -> None:
        store = self.make_store()
        self._add(store, [contract_event("$a")])
        self._add(store, [contract_event("$b", ["$a"], depth=2)])
        facts = store.get_facts(["$a", "$b"])
        assert facts["$a"].arrival < facts["$b"].arrival

    # -- flags --------------------------------------------------------------------------------

    def test_outliers_stay_out_of_the_dag_until_connected(self) -> None:
        store = self.make_store()
        self._add(store, [contract_event("$a")])
        self._add(store, [contract_event("$o", ["$a", "$gap"], depth=5)], outliers=["$o"])
        assert store.get_facts(["$o"])["$o"].outlier
        assert tuple(store.forward_extremities(ROOM)) == ("$a",)
        assert dict(store.get_children(["$a"])) == {}
        assert dict(store.backward_extremities(ROOM)) == {}
        # Stored again as a non-outlier, it is connected.
        self._add(store, [contract_event("$o", ["$a", "$gap"], depth=5)])
        assert not store.get_facts(["$o"])["$o"].outlier
        assert tuple(store.forward_extremities(ROOM)) == ("$o",)
        assert dict(store.get_children(["$a"])) == {"$a": ("$o",)}
        assert dict(store.backward_extremities(ROOM)) == {"$gap": 5}

    def test_an_outlier_prev_is_a_backward_extremity(self) -> None:
        store = self.make_store()
        self._add(store, [contract_event("$a")], outliers=["$a"])
        self._add(store, [contract_event("$b", ["$a"], depth=2)])
        assert dict(store.backward_extremities(ROOM)) == {"$a": 2}
        assert tuple(store.forward_extremities(ROOM)) == ("$b",)

    def test_rejected_and_soft_failed_events_are_not_extremities(self) -> None:
        store = self.make_store()
        self._add(store, [contract_event("$a")])
        self._add(
            store,
            [contract_event("$r", ["$a"], depth=2), contract_event("$s", ["$a"], depth=2)],
            rejected={"$r": "auth"},
            soft_failed=["$s"],
        )
        assert tuple(store.forward_extremities(ROOM)) == ("$a",)
        facts = store.get_facts(["$r", "$s"])
        assert facts["$r"].rejected == "auth"
        assert facts["$s"].soft_failed
        # They are still in the DAG: children of $a.
        assert dict(store.get_children(["$a"])) == {"$a": ("$r", "$s")}

    def test_adding_twice_is_a_no_op(self) -> None:
        store = self.make_store()
        events = _diamond()
        self._add(store, events)
        before = self._snapshot(store, [e.event_id for e in events])
        self._add(store, events)
        assert self._snapshot(store, [e.event_id for e in events]) == before

    # -- atomic refusal -----------------------------------------------------------------------

    @pytest.mark.parametrize(
        "bad",
        ["not an event", "version", "different", "flag"],
    )
    def test_bad_batches_change_nothing(self, bad: str) -> None:
        store = self.make_store()
        events = _diamond()
        self._add(store, events[:2])
        ids = [e.event_id for e in events] + ["$z"]
        before = self._snapshot(store, ids)
        batch: list[Any] = list(events[2:])
        flags: dict[str, Any] = {}
        if bad == "not an event":
            batch.append({"event_id": "$z"})
        elif bad == "version":
            batch.append(contract_event("$z", ["$e"], depth=5, version="11"))
        elif bad == "different":
            batch.append(contract_event("$a", body="another event under a stored ID"))
        else:
            flags["outliers"] = ["$not-in-batch"]
        with pytest.raises(StoreError):
            store.add_events(batch, **flags)
        self._check(store)
        assert self._snapshot(store, ids) == before

    # -- order independence -------------------------------------------------------------------

    def test_insertion_order_does_not_change_answers(self) -> None:
        rng = random.Random(7)
        events: list[Event] = []
        for n in range(40):
            prevs = sorted(rng.sample([e.event_id for e in events], min(len(events), 2)))
            if n % 7 == 3:
                prevs.append(f"$missing{n}")
            depth = 1 + max((int(p[2:]) for p in prevs if p.startswith("$e")), default=0)
            events.append(contract_event(f"$e{n}", prevs, depth=depth))
        flags: dict[str, Any] = {"rejected": {"$e5": "r"}, "soft_failed": ["$e9"]}
        answers = set()
        for _ in range(4):
            store = self.make_store()
            order = list(events)
            rng.shuffle(order)
            half = len(order) // 2
            for chunk in (order[:half], order[half:]):
                ids = {e.event_id for e in chunk}
                self._add(
                    store,
                    chunk,
                    rejected={k: v for k, v in flags["rejected"].items() if k in ids},
                    soft_failed=[i for i in flags["soft_failed"] if i in ids],
                )
            all_ids = [e.event_id for e in events]
            # Arrival numbers are store-local by definition: compare everything else.
            facts = {
                k: (v.depth, v.prev_event_ids, v.outlier, v.rejected, v.soft_failed)
                for k, v in store.get_facts(all_ids).items()
            }
            answers.add(
                repr(
                    (
                        sorted(facts.items()),
                        sorted(store.get_children(all_ids).items()),
                        tuple(store.forward_extremities(ROOM)),
                        sorted(store.backward_extremities(ROOM).items()),
                    )
                )
            )
        assert len(answers) == 1
