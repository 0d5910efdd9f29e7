"""Public test tooling for eventgraph and for the homeservers that embed it.

Hypothesis strategies that generate room DAGs, a builder for single events, and a store wrapper
that counts round trips.
"""

from .strategies import make_event as make_event

__all__ = ["make_event"]
