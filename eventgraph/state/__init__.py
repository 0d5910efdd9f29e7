"""Layer 3, room state: the authorization rules (and, alongside, state resolution)."""

from .authz import AUTH_RULES as AUTH_RULES
from .authz import CREATOR_POWER_LEVEL as CREATOR_POWER_LEVEL
from .authz import SignaturePresenceVerifier as SignaturePresenceVerifier
from .authz import SignatureVerifier as SignatureVerifier
from .authz import check_auth as check_auth
from .authz import get_power_level as get_power_level
from .authz import sender_power_level as sender_power_level

__all__ = [
    "AUTH_RULES",
    "CREATOR_POWER_LEVEL",
    "SignaturePresenceVerifier",
    "SignatureVerifier",
    "check_auth",
    "get_power_level",
    "sender_power_level",
]

# State resolution v1 / v2 / v2.1 (resolution.py).
from .resolution import resolve_state as resolve_state

__all__ += ["resolve_state"]
