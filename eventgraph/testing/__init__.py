"""Public test tooling for eventgraph and for the homeservers that embed it.

Hypothesis strategies that generate room DAGs (:func:`room_dags`), a builder for single events
(:func:`make_event`), and a store wrapper that counts round trips (:class:`CountingStore`).
Importing this package needs ``hypothesis`` (the ``test`` extra).
"""

from .counting import CountingStore as CountingStore
from .counting import StoreStatistics as StoreStatistics
from .strategies import RoomDag as RoomDag
from .strategies import make_event as make_event
from .strategies import room_dags as room_dags

__all__ = ["CountingStore", "RoomDag", "StoreStatistics", "make_event", "room_dags"]
