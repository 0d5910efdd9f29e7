"""The exception tree of eventgraph.

Rules of this module:

1. Every error eventgraph raises on purpose is an :class:`EventGraphError`. A caller that catches
   ``EventGraphError`` has caught every refusal of bad input; anything else escaping the library
   is a bug (and :class:`InternalError` names the ones we detect ourselves).
2. Each error carries a hint a server can act on: the Matrix ``errcode`` and the HTTP status a
   federation reply should use (the model is h11's ``error_status_hint``).
3. Errors subclass the matching built-in where one exists (``ValueError``, ``LookupError``), so
   generic code that catches those keeps working.
4. After any error raised by a public function, every store is exactly as it was before the call.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "CycleError",
    "EventGraphError",
    "EventNotFoundError",
    "InternalError",
    "InvalidEventError",
    "InvalidRequestError",
    "StoreError",
    "UnsupportedRoomVersionError",
]


class EventGraphError(Exception):
    """The root of every error eventgraph raises.

    Attributes:
        errcode: the Matrix error code a federation reply should carry (``M_UNKNOWN`` if none
            fits better).
        http_status: the HTTP status a federation reply should use.
    """

    errcode: str = "M_UNKNOWN"
    http_status: int = 500

    def __init__(
        self, msg: str, *, errcode: str | None = None, http_status: int | None = None
    ) -> None:
        super().__init__(msg)
        if errcode is not None:
            self.errcode = errcode
        if http_status is not None:
            self.http_status = http_status

    @property
    def message(self) -> str:
        """The human-readable message."""
        return str(self.args[0]) if self.args else ""


class InvalidEventError(EventGraphError, ValueError):
    """A PDU does not have the format of its room version (spec: receipt check 1: dropped)."""

    errcode = "M_BAD_JSON"
    http_status = 400


class UnsupportedRoomVersionError(EventGraphError, ValueError):
    """The room version is not one of the versions eventgraph implements (1–12)."""

    errcode = "M_UNSUPPORTED_ROOM_VERSION"
    http_status = 400


class EventNotFoundError(EventGraphError, LookupError):
    """An event that must exist is not in the store."""

    errcode = "M_NOT_FOUND"
    http_status = 404


class InvalidRequestError(EventGraphError, ValueError):
    """The arguments of a request are malformed (a negative limit, a non-list of IDs, ...)."""

    errcode = "M_INVALID_PARAM"
    http_status = 400


class AuthError(EventGraphError):
    """An event fails the authorization rules of its room version.

    Attributes:
        rule: a short name of the rule that failed, e.g. ``"member.join.banned"``.
    """

    errcode = "M_FORBIDDEN"
    http_status = 403

    def __init__(self, msg: str, *, rule: str) -> None:
        super().__init__(msg)
        self.rule = rule


class CycleError(EventGraphError, ValueError):
    """The graph has a cycle where the spec requires a DAG (forgeable with v1–2 event IDs)."""

    errcode = "M_BAD_JSON"
    http_status = 400


class StoreError(EventGraphError):
    """A store refused a write (it is unchanged), or found its own data inconsistent."""

    errcode = "M_UNKNOWN"
    http_status = 500


class InternalError(EventGraphError):
    """An invariant of eventgraph itself failed. This is a bug: please report it."""

    errcode = "M_UNKNOWN"
    http_status = 500
