"""The bounds of what a partner may send, beyond each field's own range (the
catalogue's): characters of text, the calendar of times and dates, the precision
of decimals. Each check answers what is wrong, or None; callers turn that into
their reason code. The table for partners is in docs/partners.md ("Bounds").

Why: every value here reaches PostgreSQL text columns, date arithmetic and exact
multiplication downstream, where a NUL, year 1 at +14:00 or `1E-999999999` is a
crash or a gigabyte claim rather than a refusal.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

EARLIEST_MOMENT = datetime(2000, 1, 1, tzinfo=UTC)
EARLIEST_DATE = date(2000, 1, 1)
# The offsets in use on Earth (Baker Island .. Line Islands).
MIN_OFFSET, MAX_OFFSET = timedelta(hours=-12), timedelta(hours=14)
MAX_DECIMAL_PLACES = 20
MAX_SIGNIFICANT_DIGITS = 20
MAX_ID_LENGTH = 256
MAX_TEXT_LENGTH = 128

# C0 and C1 controls, DEL, the line and paragraph separators (line breaks to
# JavaScript and many log viewers) and lone surrogates (not encodable as UTF-8).
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# Decimal text as the published schemas define it: ASCII digits, an optional
# fraction, no exponent (Decimal itself would take `1_000`, ` 7 `, `1E-999999` and
# other scripts' digits). contracts/schemas.py publishes this same pattern.
DECIMAL_TEXT_PATTERN = r"-?[0-9]+(\.[0-9]+)?"
DECIMAL_TEXT = re.compile(DECIMAL_TEXT_PATTERN)


def forbidden_character(text: str) -> str | None:
    """The first character of `text` no stored text may hold, or None."""
    found = _FORBIDDEN.search(text)
    return None if found is None else found.group()


def text_fault(text: str) -> str | None:
    """Why `text` may not be stored as sent: a control character, or None."""
    found = _FORBIDDEN.search(text)
    if found is None:
        return None
    return f"contains U+{ord(found.group()):04X} at position {found.start()}"


def escaped(text: str) -> str:
    """`text` with its control characters written as \\uXXXX, for messages that
    quote what a partner sent (a lone surrogate cannot even be encoded to answer)."""
    return _FORBIDDEN.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


def moment_fault(moment: datetime) -> str | None:
    """Why a partner's time is outside the calendar this system books, or None
    (the upper bound, now + skew, is the caller's `in_future` check)."""
    offset = moment.utcoffset()
    if offset is None or not MIN_OFFSET <= offset <= MAX_OFFSET:
        return f"offset {offset} is outside -12:00..+14:00"
    # A later local year is always later in UTC: that skips comparing aware datetimes,
    # most of this check's cost on the hot path.
    if moment.year <= EARLIEST_MOMENT.year and moment < EARLIEST_MOMENT:
        return f"{moment.isoformat()} is before {EARLIEST_MOMENT.date()}"
    return None


def date_fault(day: date) -> str | None:
    if day < EARLIEST_DATE:
        return f"{day} is before {EARLIEST_DATE}"
    return None


def decimal_fault(number: Decimal) -> str | None:
    """Why a decimal is too precise to be booked exactly, or None. Refused rather
    than rounded or expanded: `1E-999999` written out is a megabyte of zeros."""
    written = str(number)
    if len(written) <= MAX_SIGNIFICANT_DIGITS and "E" not in written:
        return None  # the common case, decided without building the digit tuple
    _, digits, exponent = number.as_tuple()
    if not isinstance(exponent, int):  # NaN and infinities; callers refuse them first
        return "is not finite"
    if -exponent > MAX_DECIMAL_PLACES:
        return f"has more than {MAX_DECIMAL_PLACES} decimal places"
    if exponent > MAX_DECIMAL_PLACES:  # 1E+999999999: a billion digits written out
        return f"has an exponent above {MAX_DECIMAL_PLACES}"
    if len(digits) > MAX_SIGNIFICANT_DIGITS:
        return f"has more than {MAX_SIGNIFICANT_DIGITS} significant digits"
    return None
