"""What the benchmark watches while it runs: every service's /metrics (CPU, memory,
records consumed, lag), and the broker's and PostgreSQL's processes from /proc."""

from __future__ import annotations

import os
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client.parser import text_string_to_metric_families

from carbonledger.contracts.settings import Settings

if TYPE_CHECKING:
    import psycopg

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
LOAD_GENERATOR = "bench (load)"


@dataclass(frozen=True)
class Reading:
    """One process at one moment."""

    cpu_seconds: float
    rss_bytes: float
    consumed: float = 0.0  # carbon_stage_records_consumed_total
    lag: float = 0.0  # carbon_consumer_lag_records


@dataclass
class Tick:
    at: float
    processes: dict[str, Reading] = field(default_factory=dict)


def read_metrics(port: int) -> Reading | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
            text = answer.read().decode()
    except OSError:
        return None
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in (
                "process_cpu_seconds_total",
                "process_resident_memory_bytes",
                "carbon_stage_records_consumed_total",
                "carbon_consumer_lag_records",
            ):
                values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return Reading(
        values.get("process_cpu_seconds_total", 0.0),
        values.get("process_resident_memory_bytes", 0.0),
        values.get("carbon_stage_records_consumed_total", 0.0),
        values.get("carbon_consumer_lag_records", 0.0),
    )


def _stat(pid: int) -> tuple[int, float, float] | None:
    """(parent pid, CPU seconds, RSS bytes) of a process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    parent, utime, stime, rss = int(fields[1]), int(fields[11]), int(fields[12]), int(fields[21])
    return parent, (utime + stime) / CLOCK_TICKS, rss * PAGE_BYTES


class ProcessTree:
    """A process and all its descendants (PostgreSQL's backends), as one reading; or
    the process alone, for the benchmark itself, whose descendants may be services.

    Backends come and go, so the tree's summed CPU would drop whenever one exits and
    read as a restart. Instead each member's CPU is followed by pid, and only its
    growth is added; a member that appears later counts from zero.
    """

    def __init__(self, root: int, *, descendants: bool = True) -> None:
        self.root, self.descendants = root, descendants
        self.cpu_seconds = 0.0
        self.last: dict[int, float] | None = None

    def read(self) -> Reading | None:
        stats = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and (found := _stat(int(entry.name))):
                stats[int(entry.name)] = found
        if self.root not in stats:
            return None
        members, grew = {self.root}, self.descendants
        while grew:
            more = {pid for pid, (parent, _, _) in stats.items() if parent in members} - members
            members |= more
            grew = bool(more)
        now = {pid: stats[pid][1] for pid in members}
        if self.last is None:  # the baseline: what ran before the benchmark is not counted
            self.last = now
        self.cpu_seconds += sum(cpu - self.last.get(pid, 0.0) for pid, cpu in now.items())
        self.last = now
        return Reading(self.cpu_seconds, sum(stats[p][2] for p in members))


def infrastructure_pids(settings: Settings) -> dict[str, int]:
    """The broker's and PostgreSQL's main process ids, when they run on this machine."""
    import psycopg

    found = {}
    kafka = settings.run_dir / "kafka" / "kafka.pid"
    if kafka.exists():
        found["kafka"] = int(kafka.read_text().split()[0])
    with psycopg.connect(settings.pg_conninfo) as conn:
        if (postmaster := postmaster_pid(conn)) is not None:
            found["postgres"] = postmaster
    return found


def postmaster_pid(conn: psycopg.Connection[Any]) -> int | None:
    """PostgreSQL's main process: the parent of the backend serving `conn`, read while
    `conn` is open (once it closes, the backend exits and its /proc entry is gone);
    else the first line of postmaster.pid in the data directory, when readable here."""
    import psycopg

    from carbonledger.services.ledger.adapters import views

    pid = views.backend_pid(conn)
    backend = _stat(pid) if pid is not None else None
    if backend:
        return backend[0]
    try:
        row = conn.execute("SELECT current_setting('data_directory')").fetchone()
        return int((Path(str(row[0] if row else "")) / "postmaster.pid").read_text().split()[0])
    except (psycopg.Error, OSError, ValueError, IndexError):
        # not allowed to read the setting, or the server runs elsewhere: nothing to watch
        return None


class Sampler:
    """Reads every process once a second in a background thread."""

    def __init__(self, ports: dict[str, int], pids: dict[str, int], every: float = 1.0) -> None:
        self.ports, self.every = ports, every
        self.trees = {name: ProcessTree(pid) for name, pid in pids.items()}
        # The load generator shares the cores with what it measures (this thread too).
        self.trees[LOAD_GENERATOR] = ProcessTree(os.getpid(), descendants=False)
        self.ticks: list[Tick] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self._sample()  # the baseline, before anything is sent
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()  # the final reading, after everything has been processed

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def _sample(self) -> None:
        tick = Tick(time.time())
        for name, port in self.ports.items():
            if reading := read_metrics(port):
                tick.processes[name] = reading
        for name, tree in self.trees.items():
            if reading := tree.read():
                tick.processes[name] = reading
        self.ticks.append(tick)
