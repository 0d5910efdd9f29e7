"""Canonical JSON with Matrix's number rules, and the frozen JSON values events hold.

Rules of this module (spec: appendices, "Canonical JSON"; digest §4.8):

1. Encoding is the ``canonicaljson`` package's: the shortest UTF-8 JSON, keys sorted by code
   point, no insignificant white space. It does not check numbers, so :func:`check_json` does.
2. *Strict* checking (room versions 6+, ``fragments/v6-canonical-json.md``): every number is an
   integer in ``[-(2**53)+1, 2**53-1]``; floats are refused. *Relaxed* checking (room versions
   1–5, which "MUST NOT strictly enforce" the format): any integer, and finite floats, are
   accepted, so old events keep their IDs.
3. Everywhere: only JSON types (objects with string keys, arrays, strings, numbers, booleans,
   null); no NaN or infinities; strings must be encodable as UTF-8 (no lone surrogates); nesting
   deeper than :data:`MAX_NESTING` is refused. Synapse parses events with serde_json, whose
   default recursion limit is 128, so deeper events cannot travel between servers anyway.
4. Values that leave this module inside an :class:`~eventgraph.Event` are frozen: objects become
   :class:`FrozenDict`, arrays become tuples. Both encode as JSON unchanged.
"""

from __future__ import annotations

import json.encoder as _json_encoder
from collections.abc import Callable, Mapping, Sequence
from operator import countOf
from typing import Any, NoReturn, TypeAlias

import canonicaljson

from ..errors import InvalidEventError

__all__ = [
    "MAX_NESTING",
    "MAX_SAFE_INTEGER",
    "FrozenDict",
    "JsonValue",
    "check_json",
    "encode_canonical_json",
    "encode_canonical_parts",
    "encode_canonical_text",
    "encode_json_string",
    "freeze_json",
    "thaw_json",
]

#: The largest integer canonical JSON allows (``2**53 - 1``); the smallest is its negation.
MAX_SAFE_INTEGER = 2**53 - 1

#: The deepest nesting of objects and arrays accepted in an event.
MAX_NESTING = 128

#: A JSON value as eventgraph reads it (after :func:`json.loads`, or frozen).
JsonValue: TypeAlias = Any


class FrozenDict(dict[str, Any]):
    """A ``dict`` that refuses mutation: the read-only JSON objects an event holds.

    It stays a ``dict`` subclass so the standard JSON encoder writes it directly.

    >>> d = FrozenDict({"a": 1})
    >>> d["a"]
    1
    >>> d["b"] = 2
    Traceback (most recent call last):
    ...
    TypeError: FrozenDict is read-only
    """

    __slots__ = ()

    def _readonly(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("FrozenDict is read-only")

    __setitem__ = _readonly
    __delitem__ = _readonly
    __ior__ = _readonly
    clear = _readonly
    pop = _readonly
    popitem = _readonly
    setdefault = _readonly
    update = _readonly

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items(), key=lambda kv: kv[0])))

    def __repr__(self) -> str:
        return f"FrozenDict({dict.__repr__(self)})"

    def __copy__(self) -> FrozenDict:
        return self

    def __deepcopy__(self, memo: object) -> FrozenDict:
        return self

    def __reduce__(self) -> tuple[type[FrozenDict], tuple[dict[str, Any]]]:
        return (FrozenDict, (dict(self),))


class _BadValueError(Exception):
    """A value failed the checks; ``path`` is filled in while the recursion unwinds."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []


def freeze_json(value: JsonValue, *, strict: bool, where: str = "value") -> JsonValue:
    """Check that ``value`` is JSON under the number rules, and return a frozen deep copy.

    Args:
        value: a JSON value (``dict``, ``list``/``tuple``, ``str``, ``int``, ``float``,
            ``bool``, ``None``).
        strict: apply canonical JSON's integer range and refuse floats (room versions 6+).
        where: the name of the value, for error messages.

    Raises:
        InvalidEventError: the value is not JSON, breaks the number rules, or nests too deeply.

    >>> freeze_json({"a": [1, {"b": None}]}, strict=True)
    FrozenDict({'a': (1, FrozenDict({'b': None}))})
    >>> freeze_json({"a": [2**53]}, strict=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    eventgraph.errors.InvalidEventError: value.a[0]: integer 9007199254740992 is outside ...
    """
    if type(value) is dict:
        # A flat object of strings (most event contents): nothing to check inside.
        for k, v in value.items():
            if type(v) is not str or type(k) is not str:
                break
        else:
            return FrozenDict(value)
    try:
        return _freeze(value, strict, 0)
    except _BadValueError as bad:
        msg = f"{where}{''.join(reversed(bad.path))}: {bad.reason}"
        raise InvalidEventError(msg) from None


def _freeze(value: JsonValue, strict: bool, depth: int) -> JsonValue:
    # Recursion here is over one JSON value, bounded by MAX_NESTING (rule 3), never over the
    # room graph. Paths are only built when a check fails (try blocks cost nothing otherwise).
    cls = type(value)
    if cls is str or cls is bool or value is None:
        return value
    if cls is dict or cls is FrozenDict:
        if depth >= MAX_NESTING:
            raise _BadValueError(f"nested deeper than {MAX_NESTING} levels")
        n = len(value)
        if n > _FLAT_SCAN:
            # Big flat objects (power levels' ``users``, which grow with the room): all keys
            # strings and all values integers in range (or all strings), checked in C-speed
            # passes and copied in one; anything else goes through the loop below, which
            # words the refusal. (``type(v) is int`` excludes ``bool``: so does countOf.)
            values = value.values()
            if countOf(map(type, value), str) == n:
                ints = countOf(map(type, values), int)
                if ints == n:
                    if not strict or (
                        min(values) >= -MAX_SAFE_INTEGER and max(values) <= MAX_SAFE_INTEGER
                    ):
                        return FrozenDict(value)
                elif ints == 0 and countOf(map(type, values), str) == n:
                    return FrozenDict(value)
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                raise _BadValueError(f"object key {k!r} is not a string")
            vcls = type(v)
            if vcls is str or (
                vcls is int and (not strict or -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER)
            ):
                # (inline: power levels' ``users`` maps hold thousands of integers)
                out[k] = v
                continue
            try:
                out[k] = _freeze(v, strict, depth + 1)
            except _BadValueError as bad:
                bad.path.append(f".{k}")
                raise
        return FrozenDict(out)
    if cls is int:
        if strict and not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise _BadValueError(f"integer {_int_text(value)} is outside the canonical JSON range")
        return value
    if cls is list or cls is tuple:
        if depth >= MAX_NESTING:
            raise _BadValueError(f"nested deeper than {MAX_NESTING} levels")
        items = []
        for i, v in enumerate(value):
            try:
                items.append(_freeze(v, strict, depth + 1))
            except _BadValueError as bad:
                bad.path.append(f"[{i}]")
                raise
        return tuple(items)
    if cls is float:
        if strict:
            raise _BadValueError(f"floats are not allowed in canonical JSON ({value!r})")
        if value != value or value in (float("inf"), float("-inf")):
            raise _BadValueError(f"{value!r} is not a JSON number")
        return value
    raise _BadValueError(f"{cls.__name__} is not a JSON type")


#: Objects with more members than this are first checked in bulk (``_freeze``).
_FLAT_SCAN = 16


def _int_text(value: int) -> str:
    # An integer for an error message: str() refuses more than 4300 digits (CPython's limit).
    return str(value) if value.bit_length() <= 1024 else f"of {value.bit_length()} bits"


def check_json(value: JsonValue, *, strict: bool, where: str = "value") -> None:
    """Check ``value`` as :func:`freeze_json` does, without making a copy.

    >>> check_json([1.5], strict=False)
    >>> check_json([1.5], strict=True)
    Traceback (most recent call last):
    ...
    eventgraph.errors.InvalidEventError: value[0]: floats are not allowed in canonical JSON (1.5)
    """
    cls = type(value)
    if cls is str or cls is bool or value is None:
        return
    if cls is int and (not strict or -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER):
        return
    if cls is dict:
        # A flat object of strings and in-range integers: the common case, nothing to copy.
        for k, v in value.items():
            t = type(v)
            if type(k) is not str or not (
                t is str
                or (t is int and (not strict or -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER))
            ):
                break
        else:
            return
    freeze_json(value, strict=strict, where=where)


def _not_json(value: object) -> NoReturn:
    msg = f"Object of type {type(value).__name__} is not JSON serializable"
    raise TypeError(msg)


def _make_text_encoder() -> tuple[
    Callable[[JsonValue, int], Sequence[str]], Callable[[JsonValue], str], Callable[[str], str]
]:
    # The C encoder behind json.dumps, built once with canonicaljson's exact settings
    # (ensure_ascii=False, allow_nan=False, separators (",", ":"), sort_keys=True). JSONEncoder
    # rebuilds it on every call, which costs more than encoding a small event. Without the C
    # accelerator (other Pythons) the canonicaljson package is used as it is.
    make = getattr(_json_encoder, "c_make_encoder", None)
    basestring = getattr(_json_encoder, "c_encode_basestring", None)
    if make is None or basestring is None:

        def slow_text(value: JsonValue) -> str:
            encoded: bytes = canonicaljson.encode_canonical_json(value)
            return encoded.decode("utf-8")

        def slow_parts(value: JsonValue, _level: int) -> Sequence[str]:
            return (slow_text(value),)

        return slow_parts, slow_text, _json_encoder.py_encode_basestring
    iterencode = make(None, _not_json, basestring, None, ":", ",", True, False, False)

    def encode_canonical_text(value: JsonValue) -> str:
        return "".join(iterencode(value, 0))

    return iterencode, encode_canonical_text, basestring


#: ``encode_canonical_text(value) -> str``: the canonical JSON of ``value`` as text, before its
#: UTF-8 encoding (numbers unchecked). For callers that assemble an encoding from parts
#: (:mod:`eventgraph.events.event`). It raises what the standard encoder raises
#: (``TypeError``, ``ValueError``, ``RecursionError``); a lone surrogate only fails when the
#: text is encoded as UTF-8.
#:
#: ``encode_canonical_parts(value, 0) -> Sequence[str]``: the same text in pieces to join,
#: straight from the C encoder, for hot paths that cannot afford even the wrapper's frame.
#:
#: ``encode_json_string(s) -> str``: the canonical JSON of the string ``s`` (quoted, escaped,
#: non-ASCII kept): exactly what the encoder writes for a string, value or key.
encode_canonical_parts, encode_canonical_text, encode_json_string = _make_text_encoder()


def encode_canonical_json(value: JsonValue) -> bytes:
    """Encode ``value`` as canonical JSON bytes (numbers are not checked here; see rule 1).

    The bytes are exactly those of ``canonicaljson.encode_canonical_json`` (a property test holds
    the two equal); the encoder is built once rather than per call.

    Raises:
        InvalidEventError: the value cannot be encoded (a non-JSON type, NaN, a lone surrogate,
            nesting beyond the interpreter's recursion limit).

    >>> encode_canonical_json({"b": "2", "a": "1", "本": 2, "日": 1})
    b'{"a":"1","b":"2","\\xe6\\x97\\xa5":1,"\\xe6\\x9c\\xac":2}'
    """
    try:
        return encode_canonical_text(value).encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError) as err:
        msg = f"cannot encode as canonical JSON: {err}"
        raise InvalidEventError(msg) from err


def thaw_json(value: JsonValue) -> JsonValue:
    """Return a mutable deep copy of a (possibly frozen) JSON value: dicts and lists."""
    if isinstance(value, Mapping):
        return {k: thaw_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thaw_json(v) for v in value]
    return value
