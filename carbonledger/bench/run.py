"""`carbonledger bench`: a simulated city's partner traffic through the running
services, measured as operators would measure it, and checked against `settle`.

The run publishes each partner's records as that partner, at a target rate or as
fast as the producers take them, while a sampler reads every process's /metrics
(and the broker's and PostgreSQL's /proc) once a second. When every consumer
group has caught up, it reports throughput from the first record sent to the last
posting committed, latency from each event's send to its first credit posting,
per-process CPU and memory, lag over time, and whether the books moved by exactly
what `carbonledger settle` computes from the same records. A wrong result fails
the run (exit 1), however fast.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import os
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaProducer

from carbonledger.bench import storage
from carbonledger.bench.patience import TRANSIENT, Books
from carbonledger.bench.probe import LOAD_GENERATOR, Sampler, Tick, infrastructure_pids
from carbonledger.bench.traffic import CityProfile, CityTraffic, reporting_partners
from carbonledger.contracts import access, topics
from carbonledger.contracts.settings import Settings
from carbonledger.ops import lifecycle, stack
from carbonledger.ops.progress import LEDGER_GROUP, LagProbe
from carbonledger.reference.reconcile import expected_from
from carbonledger.runtime.producers import producer
from carbonledger.services.ledger.adapters import views

log = logging.getLogger(__name__)
Records = list[tuple[str, bytes]]
TICK_SECONDS = 0.1
RECORDS_PER_ACTIVITY = 1.4  # a first guess at the generator's ratio; corrected as it runs


@dataclass(frozen=True)
class BenchOptions:
    people: int = 100_000
    activities: int = 200_000
    rate: float = 0.0  # partner records per second offered; 0 = as fast as possible
    seed: int = 2026
    relay: bool = False
    fresh: bool = False
    workers: int = 1
    timeout: float = 1800.0
    json_out: Path | None = None
    plot: Path | None = None


@dataclass
class Sent:
    """What the load generator sent, and when each event first went out."""

    records: Records = field(default_factory=list)
    at: dict[str, float] = field(default_factory=dict)  # event id -> first send time
    first: float = 0.0
    last: float = 0.0


# --- sending --------------------------------------------------------------------


class PartnerProducers:
    """One producer per partner, each connected as that partner's principal."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producers: dict[str, KafkaProducer] = {}

    def send(self, partner: str, raw: bytes) -> None:
        client = self.producers.get(partner) or self._connect(partner)
        client.send(topics.partner_topic(partner), value=raw)

    def connect(self, partners: Iterable[str]) -> None:
        """Connect each partner's producer and learn its topic now: done at its first
        send, it stalled the paced sender a few hundred ms per partner, and the records
        held back meanwhile went out as a burst of twice the rate asked for."""
        for partner in partners:
            self._connect(partner).partitions_for(topics.partner_topic(partner))

    def _connect(self, partner: str) -> KafkaProducer:
        principal = self.settings.as_principal(access.partner_principal_name(partner))
        client = self.producers[partner] = _producer(principal)
        return client

    def close(self) -> None:
        for client in self.producers.values():
            client.flush(timeout=120)
            client.close(timeout=30)


def _producer(settings: Settings) -> KafkaProducer:
    return producer(settings, linger_ms=10, batch_size=262_144)


def _event_id(raw: bytes) -> str | None:
    try:
        found = orjson.loads(raw).get("id")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return str(found) if found is not None else None


def paced_batches(
    traffic: CityTraffic,
    activities: int,
    rate: float,
    progress: Callable[[int, int | None], None] | None = None,
) -> Iterator[Records]:
    """Batches of records stamped when they are due: `rate` records a second, or as
    fast as they are taken when rate is 0. `progress` hears (activities sent, all)."""
    started, made, records_made = time.monotonic(), 0, 0
    while made < activities:
        if rate:
            due = rate * (time.monotonic() - started) - records_made
            if due < 1:
                time.sleep(TICK_SECONDS / 2)
                continue
            ratio = records_made / made if made else RECORDS_PER_ACTIVITY
            count = max(1, min(activities - made, math.ceil(due / ratio)))
        else:
            count = min(activities - made, 2000)
        batch = traffic.batch(count, datetime.now(UTC))
        made, records_made = made + count, records_made + len(batch)
        yield batch
        if progress:
            progress(made, activities)


def send_all(
    settings: Settings,
    batches: Iterator[Records],
    to_topic: str | None = None,
    partners_first: Iterable[str] = (),
) -> Sent:
    """Send every batch (to the partners' topics, or all to one topic as the admin),
    connected first as `partners_first` (before the first batch is due)."""
    sent = Sent()
    partners = PartnerProducers(settings)
    relay = _producer(settings) if to_topic else None
    try:
        partners.connect(partners_first)
        for batch in batches:
            now = time.time()
            sent.first = sent.first or now
            for partner, raw in batch:
                if relay is not None and to_topic:
                    relay.send(to_topic, value=raw)
                else:
                    partners.send(partner, raw)
                event = _event_id(raw)
                if event is not None and event not in sent.at:
                    sent.at[event] = now
            sent.records.extend(batch)
    finally:
        partners.close()
        if relay is not None:
            relay.flush(timeout=120)
            relay.close()
    sent.last = time.time()
    return sent


# --- waiting and reading the ledger ----------------------------------------------


def wait_caught_up(settings: Settings, books: Books, timeout: float) -> None:
    """Until every group has read everything, twice in a row a second apart. A broker
    or PostgreSQL restart meanwhile costs a reading, not the run."""
    deadline, quiet = time.monotonic() + timeout, 0
    probe: LagProbe | None = None
    try:
        while quiet < 2:
            if time.monotonic() > deadline:
                raise TimeoutError("the pipeline did not catch up within the timeout")
            ledger = books.read(views.writer_offsets, LEDGER_GROUP)
            try:
                probe = probe or LagProbe(settings)
                lag = probe.pipeline(ledger)
            except TRANSIENT as error:
                log.warning("lag unreadable (%s); reconnecting", error)
                _closed(probe)
                probe, quiet = None, 0
            else:
                quiet = quiet + 1 if not any(lag.values()) else 0
            time.sleep(1)
    finally:
        _closed(probe)


def _closed(probe: LagProbe | None) -> None:
    if probe is not None:
        with contextlib.suppress(*TRANSIENT):
            probe.__exit__(None, None, None)


def check_books(
    settings: Settings,
    books: Books,
    records: Records,
    before: dict[str, dict[str, int]],
) -> list[str]:
    """Differences between how the books moved and what `settle` computes."""
    expected = expected_from(settings, records)
    problems = []
    personal = {s: v for s, v in expected.personal.items() if v}
    got = books.read(views.balances_of, "personal", expected.personal)
    got = {s: v for s, v in got.items() if v}
    if got != personal:
        wrong = sorted(set(got) ^ set(personal) | {s for s in got if got[s] != personal.get(s)})
        problems.append(f"personal: {len(wrong)} people differ from settle (e.g. {wrong[:2]})")
    for book in ("enterprise", "government"):
        after = books.read(views.balances, book)
        moved = {a: after.get(a, 0) - before[book].get(a, 0) for a in after}
        moved = {a: v for a, v in moved.items() if v}
        wanted = {a: v for a, v in expected.book(book).items() if v}
        if moved != wanted:
            problems.append(f"{book}: moved {moved} but settle says {wanted}")
    return problems


def percentiles(values: list[float], points: tuple[float, ...] = (50, 95, 99)) -> dict[str, float]:
    if not values:
        return {f"p{p:g}": float("nan") for p in points}
    ordered = sorted(values)
    return {
        f"p{p:g}": ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]
        for p in points
    }


def increase(values: list[float]) -> float:
    """How much a counter grew, across restarts (a drop means it started again at 0),
    as Prometheus's increase() reads it."""
    return sum(b - a if b >= a else b for a, b in itertools.pairwise(values))


def process_figures(ticks: list[Tick], records: int) -> dict[str, dict[str, float]]:
    """Per process: CPU seconds per 1,000 records, peak RSS, and the rate at which it
    consumed while it was consuming."""
    figures: dict[str, dict[str, float]] = {}
    for name in sorted({n for t in ticks for n in t.processes}):
        seen = [(t.at, t.processes[name]) for t in ticks if name in t.processes]
        busy = [
            at for (_, prev), (at, r) in itertools.pairwise(seen) if r.consumed != prev.consumed
        ]
        consumed = increase([r.consumed for _, r in seen])
        cpu = increase([r.cpu_seconds for _, r in seen])
        span = (busy[-1] - seen[0][0]) if busy else 0.0
        figures[name] = {
            "cpu_seconds": round(cpu, 2),
            "cpu_seconds_per_1000": round(cpu / records * 1000, 3) if records else 0.0,
            "peak_rss_mb": round(max(r.rss_bytes for _, r in seen) / 2**20, 1),
            "consumed": consumed,
            "consumed_per_second": round(consumed / span, 1) if span > 0 else 0.0,
            "restarts": sum(
                b.cpu_seconds < a.cpu_seconds for (_, a), (_, b) in itertools.pairwise(seen)
            ),
        }
    return figures


def cpu_per_record(processes: dict[str, dict[str, float]]) -> dict[str, float]:
    """CPU milliseconds per record sent: of every process (broker and PostgreSQL
    included), and of all but the load generator (what the platform itself spent)."""
    total = sum(f["cpu_seconds_per_1000"] for f in processes.values())
    load = processes.get(LOAD_GENERATOR, {}).get("cpu_seconds_per_1000", 0.0)
    return {"all": round(total, 3), "platform": round(total - load, 3)}


def lag_series(ticks: list[Tick], start: float) -> dict[str, list[tuple[float, float]]]:
    series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for tick in ticks:
        for name, reading in tick.processes.items():
            if name not in ("kafka", "postgres"):
                series[name].append((round(tick.at - start, 1), reading.lag))
    return dict(series)


def throughput_series(ticks: list[Tick], start: float) -> dict[str, list[tuple[float, float]]]:
    """Records consumed per second by each process, between successive readings."""
    series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for prev, tick in itertools.pairwise(ticks):
        for name, reading in tick.processes.items():
            before = prev.processes.get(name)
            if before is not None and name not in ("kafka", "postgres"):
                rate = (reading.consumed - before.consumed) / (tick.at - prev.at)
                series[name].append((round(tick.at - start, 1), round(rate, 1)))
    return dict(series)


def dedupe_state(ports: dict[str, int]) -> dict[str, float]:
    """Mean stored bytes per person from dedupe's own histogram, after the run."""
    from prometheus_client.parser import text_string_to_metric_families

    total, count = 0.0, 0.0
    for name, port in ports.items():
        if not name.startswith("dedupe"):
            continue
        with _urlopen(f"http://127.0.0.1:{port}/metrics") as answer:
            for family in text_string_to_metric_families(answer.read().decode()):
                for s in family.samples:
                    if s.name == "carbon_dedupe_person_state_bytes_sum":
                        total += s.value
                    elif s.name == "carbon_dedupe_person_state_bytes_count":
                        count += s.value
    return {"mean_state_bytes_per_write": round(total / count, 1) if count else 0.0}


def _urlopen(url: str) -> Any:
    import urllib.request

    return urllib.request.urlopen(url, timeout=5)


# --- the relay ceiling -----------------------------------------------------------------


def relay_ceiling(settings: Settings, options: BenchOptions, sent: Sent) -> dict[str, float]:
    """The same records, the same number of hops, plain aiokafka, no logic."""
    from carbonledger.contracts.topics import TopicSpec
    from carbonledger.ops.admin import admin_client, ensure_topics

    run = uuid.uuid4().hex[:8]
    hops = [f"bench.relay.{run}.{i}" for i in range(4)]
    hour = 3_600_000
    ensure_topics(
        settings,
        [TopicSpec(t, settings.topic_partitions, hour, "-", "-", "bench", "bench") for t in hops],
    )
    env = {**os.environ, "CARBON_KAFKA_USERNAME": access.ADMIN}
    module = [sys.executable, "-m", "carbonledger.bench.relay"]
    workers = [
        subprocess.Popen([*module, "hop", hops[i], hops[i + 1], f"relay-{run}-{i}"], env=env)
        for i in range(3)
    ]
    sink = subprocess.Popen(
        [*module, "sink", hops[3], f"relay-{run}-sink", str(len(sent.records))],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # As fast as the producer takes them: the ceiling is a maximum throughput.
        batches = iter([sent.records[i : i + 2000] for i in range(0, len(sent.records), 2000)])
        relayed = send_all(settings, batches, to_topic=hops[0])
        out, _ = sink.communicate(timeout=options.timeout)
        arrived = json.loads(out)
    finally:
        for process in workers:
            process.kill()
            process.wait()
        sink.kill()
        sink.wait()
        admin = admin_client(settings)
        try:
            admin.delete_topics(hops)
        finally:
            admin.close()
    seconds = arrived["last"] - relayed.first
    return {
        "records": arrived["count"],
        "seconds": round(seconds, 2),
        "records_per_second": round(arrived["count"] / seconds, 1),
    }


# --- the whole run --------------------------------------------------------------------


def run_bench(
    settings: Settings,
    options: BenchOptions,
    progress: Callable[[int, int | None], None] | None = None,
) -> tuple[dict[str, Any], list[float]]:
    """The report, and every credited event's latency (for the histogram); `progress`
    hears how many of the activities have been sent."""
    if options.fresh:
        lifecycle.reset(settings)
    lifecycle.up(settings, options.workers)
    processes = stack.Processes(settings)
    ports = {f"{n}-{w}": processes.port(n, w) for n, w in processes.running()}
    traffic = CityTraffic(CityProfile(people=options.people, seed=options.seed, tag=_tag()))
    with Books(settings) as books:
        # Traffic still in flight would move the shared enterprise and government
        # books during the run and read as a wrong result.
        wait_caught_up(settings, books, options.timeout)
        before = {b: books.read(views.balances, b) for b in ("enterprise", "government")}
        start_seq = books.read(views.last_seq)
        disk = (books.read(storage.table_bytes), storage.topic_bytes(settings))
        with Sampler(ports, infrastructure_pids(settings)) as sampler:
            batches = paced_batches(traffic, options.activities, options.rate, progress)
            sent = send_all(settings, batches, partners_first=reporting_partners())
            wait_caught_up(settings, books, options.timeout)
        disk_after = (books.read(storage.table_bytes), storage.topic_bytes(settings))
        finished = books.read(views.last_posted_at, start_seq)
        posted = books.read(views.first_credits, start_seq)
        latencies = [posted[e] - at for e, at in sent.at.items() if e in posted]
        problems = check_books(settings, books, sent.records, before)
    seconds = finished - sent.first
    by_process = process_figures(sampler.ticks, len(sent.records))
    report: dict[str, Any] = {
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(options).items()},
        "generated": traffic.counts.as_dict(),
        "records": len(sent.records),
        "send_seconds": round(sent.last - sent.first, 2),
        "seconds": round(seconds, 2),
        "records_per_second": round(len(sent.records) / seconds, 1) if seconds > 0 else 0.0,
        "offered_records_per_second": round(len(sent.records) / (sent.last - sent.first), 1),
        "latency_seconds": {k: round(v, 3) for k, v in percentiles(latencies).items()},
        "credited_events": len(latencies),
        "processes": by_process,
        "cpu_ms_per_record": cpu_per_record(by_process),
        "storage": storage.storage_figures(
            (disk[0], disk_after[0]), (disk[1], disk_after[1]), len(latencies), len(sent.records)
        ),
        "dedupe": dedupe_state(ports) | {"people": options.people},
        "lag": lag_series(sampler.ticks, sent.first),
        "throughput": throughput_series(sampler.ticks, sent.first),
        "correct": not problems,
        "problems": problems,
    }
    if options.relay:
        ceiling = relay_ceiling(settings, options, sent)
        report["relay"] = ceiling
        report["ratio_to_relay"] = round(
            report["records_per_second"] / ceiling["records_per_second"], 3
        )
    return report, latencies


def _tag() -> str:
    return f"b{uuid.uuid4().hex[:6]}"
