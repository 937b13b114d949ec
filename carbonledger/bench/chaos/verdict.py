"""Judging what a chaos run observed against the tables: pure, no I/O.

A hostile input passes when it was refused with one of its reasons (a dead letter over
Kafka, its `rejected` result over HTTP, or a 4xx for a whole-body case), nothing was
posted for it, and the valid control sent with it was credited. A valid-looking case
(no reasons) passes when it was credited. An internal poison passes when it was
dead-lettered with one of its reasons and nothing was posted for it. Restarts are one
verdict for the whole run: a stage that restarted was stopped by something it read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ALONE, WITH_CONTROL = "alone", "with-control"
# How a gateway may refuse a whole body: bad request, too large, unprocessable. Not 401
# (that refuses the credentials) nor 5xx (that is the gateway failing).
BODY_REFUSALS = frozenset({400, 413, 415, 422})


@dataclass(frozen=True)
class Attempt:
    """One hostile input as sent: which case, how, with which event id (the builder's;
    a case may append to it) and, in the second phase, the control's id."""

    case: str
    channel: str  # "kafka", "http" or the internal topic written
    phase: str
    event_id: str
    raw: bytes
    reasons: frozenset[str]
    control_id: str | None = None
    whole_body: bool = False
    http_status: int | None = None
    http_results: tuple[Mapping[str, Any], ...] = ()  # the answer's results, in order


@dataclass
class Observed:
    """What the stack shows after the run."""

    letters: dict[bytes, str] = field(default_factory=dict)  # original payload -> reason
    letters_by_event: dict[str, str] = field(default_factory=dict)  # event id -> reason
    postings: dict[str, int] = field(default_factory=dict)  # event id -> postings made

    def letter_reason(self, attempt: Attempt) -> str | None:
        """The reason the input was dead-lettered with: by its bytes (ingest keeps them),
        else by its event id (a later stage letters its own record of the event)."""
        found = self.letters.get(attempt.raw)
        if found is not None:
            return found
        return next(
            (r for e, r in self.letters_by_event.items() if e.startswith(attempt.event_id)), None
        )

    def posted(self, event_id: str) -> int:
        """Postings made for events whose id starts with this one (a case may append)."""
        return sum(n for e, n in self.postings.items() if e.startswith(event_id))

    def credited(self, event_id: str) -> bool:
        """Whether exactly this event made postings (a control's id is its own)."""
        return self.postings.get(event_id, 0) > 0


@dataclass(frozen=True)
class Verdict:
    case: str
    channel: str
    phase: str
    outcome: str
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def judge(attempt: Attempt, seen: Observed) -> Verdict:
    problems: list[str] = []
    if attempt.channel == "http":
        outcome = _judge_http(attempt, seen, problems)
    elif not attempt.reasons:
        outcome = "credited" if seen.posted(attempt.event_id) else "not credited"
        if outcome != "credited":
            problems.append("a valid event was not credited")
    else:
        reason = seen.letter_reason(attempt)
        outcome = f"dead-lettered {reason}" if reason else "no dead letter"
        if reason not in attempt.reasons:
            problems.append(f"wanted a dead letter with {' or '.join(sorted(attempt.reasons))}")
    if attempt.reasons and seen.posted(attempt.event_id):
        problems.append(f"{seen.posted(attempt.event_id)} postings made for it")
    if attempt.control_id is not None and not seen.credited(attempt.control_id):
        problems.append("its control event was not credited")
    return Verdict(attempt.case, attempt.channel, attempt.phase, outcome, tuple(problems))


def _judge_http(attempt: Attempt, seen: Observed, problems: list[str]) -> str:
    status = attempt.http_status
    if status in BODY_REFUSALS and attempt.whole_body and attempt.reasons:
        return f"HTTP {status}"  # the whole body refused: allowed for body-level cases
    if status != 200 or not attempt.http_results:
        problems.append(f"wanted HTTP 200 with a result per event, got {status}")
        return f"HTTP {status}"
    first = attempt.http_results[0]
    if not attempt.reasons:
        if first.get("status") != "accepted" or not seen.posted(attempt.event_id):
            problems.append("a valid event was not accepted and credited")
        return f"HTTP 200 {first.get('status')}"
    outcome = f"HTTP 200 {first.get('status')} {first.get('reason') or ''}".rstrip()
    if first.get("status") != "rejected" or first.get("reason") not in attempt.reasons:
        problems.append(f"wanted its result rejected with {' or '.join(sorted(attempt.reasons))}")
    controls = attempt.http_results[1:]
    if attempt.control_id is not None and controls and controls[0].get("status") != "accepted":
        problems.append("its control event was refused with it")
    return outcome


def restarted(before: Mapping[str, float], after: Mapping[str, float]) -> list[str]:
    """Processes whose start time moved (or that are gone) between two readings."""
    return sorted(name for name, started in before.items() if after.get(name) != started)


def judge_all(attempts: Iterable[Attempt], seen: Observed) -> list[Verdict]:
    return [judge(a, seen) for a in attempts]


def table(verdicts: Iterable[Verdict]) -> str:
    """One line per input: ok or FAIL, the case, how it was sent, what happened, why."""
    lines = []
    for v in verdicts:
        mark = "ok  " if v.ok else "FAIL"
        why = f"  <- {'; '.join(v.problems)}" if v.problems else ""
        lines.append(f"{mark} {v.case:<34} {v.channel:<20} {v.phase:<13} {v.outcome}{why}")
    return "\n".join(lines)
