"""Layer 3, the graph algorithms: walks over ``prev_events`` and auth chains.

Every function here is a pure, synchronous function of a store (the protocols of
:mod:`eventgraph.protocols`) and its inputs. None imports a store module.
"""

from .auth_chain import auth_chain_difference as auth_chain_difference
from .auth_chain import auth_chain_ids as auth_chain_ids
from .auth_chain import conflicted_subgraph as conflicted_subgraph
from .walks import backfill as backfill
from .walks import missing_events as missing_events

__all__ = [
    "auth_chain_difference",
    "auth_chain_ids",
    "backfill",
    "conflicted_subgraph",
    "missing_events",
]
