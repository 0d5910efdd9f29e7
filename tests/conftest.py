"""Shared test configuration: hypothesis profiles.

``CI=true`` selects the ``ci`` profile: derandomized, so a landing never depends on luck.
Locally the ``dev`` profile explores more; ``HYPOTHESIS_PROFILE=explore`` explores much more.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Every bundled store as a fixture (tests/stores.py): a test that takes ``store_factory`` or
# ``room_store_factory`` runs once per store kind.
from .stores import room_store_factory as room_store_factory
from .stores import store_factory as store_factory

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=60,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "explore",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_default = "ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", _default))
