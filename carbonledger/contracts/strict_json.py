"""Partner JSON read strictly: nesting bounded before parsing, duplicate keys refused.

Python's parser recurses once per level and keeps the last of two equal keys, so a
deeply nested record ends in a RecursionError and `{"distance_km": 12.5,
"distance_km": 199.9}` means whatever the last writer wanted. Here the depth is
measured first without recursion (a byte count when it cannot be high, otherwise
a scan of the brackets outside strings), and a parsed object with a repeated key
is refused. Quantities become Decimals, as with `loads_exact`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from decimal import Decimal
from itertools import accumulate
from typing import Any

from carbonledger.contracts.exact import NotExactError

MAX_DEPTH = 32
"""Objects and arrays inside each other; an event needs 2 (the envelope and `data`)."""


class TooDeepError(ValueError):
    """A document nests objects and arrays deeper than `MAX_DEPTH`."""


class DuplicateKeyError(ValueError):
    """An object names the same key twice."""


# A JSON string literal (escapes included), or one bracket. Unrolled so that a long
# string is matched by one run of the C engine, never character by character.
_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_STRINGS = re.compile(_STRING, re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_BARE = re.compile(r'[^\s,\[\]{}"]+')


def nesting_depth(text: str) -> int:
    """How deep objects and arrays nest (0 for a scalar); exact for valid JSON,
    an upper bound of the brackets' depth for anything else. Linear, C-speed loops."""
    brackets = _NOT_BRACKETS.sub("", _STRINGS.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def check_depth(raw: bytes | str, limit: int = MAX_DEPTH) -> None:
    """Raises TooDeepError when `raw` nests deeper than `limit`."""
    if isinstance(raw, bytes):
        # Fewer brackets than the limit in all (strings included): cannot be too deep.
        if raw.count(b"{") + raw.count(b"[") <= limit:
            return
        text = raw.decode("utf-8", errors="replace")
    else:
        if raw.count("{") + raw.count("[") <= limit:
            return
        text = raw
    depth = nesting_depth(text)
    if depth > limit:
        raise TooDeepError(f"objects and arrays nest {depth} deep; at most {limit}")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        twice = next(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)
        raise DuplicateKeyError(f"key {twice[:64]!r} appears more than once in one object")
    return document


def _reject_constant(name: str) -> Any:
    raise NotExactError(f"{name} is not a number this system accepts")


# Built once: json.loads with options builds a decoder on every call.
_DECODER = json.JSONDecoder(
    parse_float=Decimal, parse_constant=_reject_constant, object_pairs_hook=_unique_keys
)


def loads_strict(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Parse partner JSON: TooDeepError, DuplicateKeyError, NotExactError (NaN,
    Infinity) or ValueError (not JSON, or bytes not UTF-8) for what it refuses."""
    check_depth(text, max_depth)
    return _DECODER.decode(text.decode("utf-8") if isinstance(text, bytes) else text)


def value_end(text: str, start: int) -> int:
    """Where the JSON value beginning at `start` ends, found without parsing it (so
    without recursion, however deep it nests); ValueError if a string is unterminated
    or its brackets never close. A scalar ends before the next `,` `]` or space."""
    if text[start : start + 1] not in ("[", "{"):
        scalar = _STRINGS.match(text, start) or _BARE.match(text, start)
        if scalar is None:
            raise ValueError(f"no JSON value at {start}")
        return scalar.end()
    depth, position = 0, start
    while position < len(text):
        if text[position] == '"':
            string = _STRINGS.match(text, position)
            if string is None:
                raise ValueError(f"unterminated string at {position}")
            position = string.end()
            continue
        quote = text.find('"', position)
        stretch_end = len(text) if quote < 0 else quote
        depth, position = _through_brackets(text, position, stretch_end, depth)
        if depth == 0:
            return position
    raise ValueError(f"the value at {start} never closes")


def _through_brackets(text: str, position: int, end: int, depth: int) -> tuple[int, int]:
    """Walk a stretch without strings until the value closes (depth 0) or the stretch
    ends. At depth d the next d-1 characters cannot close it, so they are counted in
    one C call: deep nesting costs a logarithmic number of steps, not one per bracket."""
    while position < end:
        step = min(end - position, depth - 1)
        if step > 1:
            piece = text[position : position + step]
            depth += piece.count("[") + piece.count("{") - piece.count("]") - piece.count("}")
            position += step
            continue
        character = text[position]
        position += 1
        if character in "[{":
            depth += 1
        elif character in "]}":
            depth -= 1
            if depth == 0:
                break
    return depth, position
