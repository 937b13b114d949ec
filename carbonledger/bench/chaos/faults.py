"""Fault runs: the benchmark's city traffic at a steady rate while one fault strikes at
a random moment (a stage SIGKILLed, the broker or PostgreSQL restarted), then the
books checked three ways once the pipeline has caught up:

- the books moved by exactly what `settle` computes from the records sent (bench's own
  check: nothing lost, nothing doubled in any book);
- `verify` (every chain, head and book) is ok;
- topic completeness: every event ingest admits reached a decision (`lost` counts those
  that did not) and none holds more than one standing credit (`doubled`).

The traffic, the sending and the books check are the benchmark's (bench/run.py); the
process control is the stack's (ops/stack.py).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg

from carbonledger.bench.chaos.attack import new_tag
from carbonledger.bench.patience import Books
from carbonledger.bench.run import Records, check_books, paced_batches, send_all, wait_caught_up
from carbonledger.bench.traffic import CityProfile, CityTraffic
from carbonledger.contracts.catalogue import is_account_type, is_engagement_type
from carbonledger.contracts.partners import load_registry
from carbonledger.contracts.records import ValidatedBehaviour
from carbonledger.contracts.settings import Settings
from carbonledger.ops import stack
from carbonledger.services.ingest.service import PartnerRecord, admit_records
from carbonledger.services.ledger.adapters import audit, views

STAGES = ("ingest", "quantify", "dedupe", "ledger-writer")
INFRASTRUCTURE = ("kafka", "postgres")
FAULTS = (*(f"sigkill:{s}" for s in STAGES), *(f"restart:{i}" for i in INFRASTRUCTURE))
RECORDS_PER_ACTIVITY = 1.4  # the city's ratio, for when the send will be over
FLAT_OUT = 1_500.0  # records/s a 2-core stack takes flat out (--rate 0), roughly


@dataclass(frozen=True)
class FaultOptions:
    activities: int = 3_000
    rate: float = 600.0  # partner records per second; 0: as fast as the producers take them
    people: int = 2_000
    seed: int = 2026
    outage_seconds: float = 5.0  # how long the broker or database stays down
    timeout: float = 600.0


@dataclass
class FaultRun:
    fault: str
    faults: int = 0  # how many times it struck
    records: int = 0  # partner records sent
    events: int = 0  # distinct events ingest admits
    lost: int = 0
    doubled: int = 0
    verify_ok: bool = False
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            self.faults > 0 and self.verify_ok and not (self.lost or self.doubled or self.problems)
        )


def strike(settings: Settings, fault: str, outage_seconds: float) -> None:
    """One fault now: SIGKILL a stage (its supervisor loop too) and start it again, as
    systemd would; or stop the broker or database and start it after the outage."""
    action, _, target = fault.partition(":")
    if action == "sigkill":
        processes = stack.Processes(settings)
        processes.kill(target)
        processes.start(target)
    elif action == "restart" and target in INFRASTRUCTURE:
        stack.script(target, "stop", settings)
        time.sleep(outage_seconds)
        stack.script(target, "start", settings)
    else:
        raise ValueError(f"unknown fault {fault!r} (one of {', '.join(FAULTS)})")


@contextmanager
def striking(
    settings: Settings, fault: str, after: float, outage_seconds: float
) -> Iterator[list[str]]:
    """The fault, `after` seconds into the block, from a thread; yields the strikes made
    (a failure to strike is listed as a problem by the caller)."""
    struck: list[str] = []

    def run() -> None:
        time.sleep(after)
        try:
            strike(settings, fault, outage_seconds)
            struck.append(fault)
        except Exception as exc:  # reported in the run, never lost in a thread
            struck.append(f"failed: {exc}")

    thread = threading.Thread(target=run, name=f"fault {fault}")
    thread.start()
    try:
        yield struck
    finally:
        thread.join()


def wait_ready(settings: Settings, timeout: float = 180) -> None:
    processes = stack.Processes(settings)
    for name, worker in processes.running():
        processes.wait_ready(name, worker, timeout)


def admitted_events(settings: Settings, records: Records, now: datetime) -> set[tuple[str, str]]:
    """The distinct events ingest admits from these records (as settle admits them) that
    must reach a decision: engagement and account events never do (they go to
    engagement.events and account.events)."""
    registry = load_registry(settings.partners_file)
    arrivals = (PartnerRecord(p, None, raw, "chaos", 0, n) for n, (p, raw) in enumerate(records))
    return {
        (o.event.source, o.event.id)
        for o in admit_records(arrivals, registry, now=now)
        if isinstance(o, ValidatedBehaviour)
        and not (is_engagement_type(o.type) or is_account_type(o.type))
    }


def completeness(
    conn: psycopg.Connection, tag: str, admitted: set[tuple[str, str]]
) -> tuple[int, int]:
    """(lost, doubled): admitted events with no decision; events with two standing credits."""
    tallies = views.event_tallies(conn, tag)
    lost = len(admitted - tallies.keys())
    doubled = sum(t.standing_credits > 1 for t in tallies.values())
    return lost, doubled


def fault_run(
    settings: Settings,
    fault: str,
    options: FaultOptions,
    rng: random.Random,
    progress: Callable[[str], None] = lambda _line: None,
) -> FaultRun:
    """One run of the city's traffic with `fault` striking once at a random moment of it."""
    run, started = FaultRun(fault), time.monotonic()
    tag = new_tag()
    # No late arrivals: each admitted event must then reach a decision.
    traffic = CityTraffic(
        CityProfile(people=options.people, seed=options.seed, tag=tag, late_share=0)
    )
    with Books(settings) as books:
        wait_caught_up(settings, books, options.timeout)  # others' traffic would move the books
        before = {b: books.read(views.balances, b) for b in ("enterprise", "government")}
    sending = options.activities * RECORDS_PER_ACTIVITY / (options.rate or FLAT_OUT)
    after = rng.uniform(0.2, 0.7) * sending
    progress(f"{fault}: sending ~{sending:.0f} s of traffic, striking after {after:.1f} s")
    try:
        with striking(settings, fault, after, options.outage_seconds) as struck:
            sent = send_all(settings, paced_batches(traffic, options.activities, options.rate))
    except Exception as exc:  # the load generator's own failure is a result too
        run.problems.append(f"sending failed: {type(exc).__name__}: {exc}")
        run.seconds = round(time.monotonic() - started, 1)
        return run
    run.faults = sum(s == fault for s in struck)
    run.problems += [s for s in struck if s != fault]
    run.records = len(sent.records)
    wait_ready(settings)
    with Books(settings) as books:
        wait_caught_up(settings, books, options.timeout)
        run.problems += check_books(settings, books, sent.records, before)
        admitted = admitted_events(settings, sent.records, datetime.now(UTC))
        run.events = len(admitted)
        run.lost, run.doubled = books.read(completeness, tag, admitted)
        report = books.read(audit.verify)
        run.verify_ok = report.ok
        if not report.ok:
            run.problems.append(f"verify: {report.breaks} breaks, {report.problems[:3]}")
    run.seconds = round(time.monotonic() - started, 1)
    return run


def fault_runs(
    settings: Settings,
    runs: int,
    options: FaultOptions,
    faults: tuple[str, ...] = FAULTS,
    progress: Callable[[str], None] = lambda _line: None,
) -> list[FaultRun]:
    """`runs` runs, the faults taken in turn; the seed makes the moments repeatable."""
    rng = random.Random(options.seed)
    return [
        fault_run(settings, faults[n % len(faults)], options, rng, progress) for n in range(runs)
    ]


def table(runs: list[FaultRun]) -> str:
    lines = [
        f"{'':4} {'fault':<22} {'faults':>6} {'records':>8} {'events':>7} {'lost':>5}"
        f" {'doubled':>7} {'verify':>6} {'seconds':>7}  problems"
    ]
    for r in runs:
        lines.append(
            f"{'ok' if r.ok else 'FAIL':<4} {r.fault:<22} {r.faults:>6} {r.records:>8}"
            f" {r.events:>7} {r.lost:>5} {r.doubled:>7} {'ok' if r.verify_ok else 'no':>6}"
            f" {r.seconds:>7}  {'; '.join(r.problems)[:200]}"
        )
    return "\n".join(lines)
