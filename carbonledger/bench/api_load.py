"""`carbonledger load`: bounded load against the two HTTP services, measured.

`drive_api` runs N concurrent clients for S seconds against the ledger API's read
endpoints, each request with a bounded timeout, and reports requests, timeouts,
errors by status and latency percentiles: the API must answer every client, never
hang (docs/operations.md, "API capacity").

`refuse_bodies` sends K concurrent oversized bodies to the HTTP gateway, generated
lazily (the client never holds one), half with a Content-Length and half chunked,
and reports the gateway's RSS while it refuses them: the gateway must stop reading
at its limit, never buffer a body (docs/partners.md, "Limits").
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

# What the load asks for when no accounts are named: the read side's fixed routes.
DEFAULT_PATHS = (
    "/v1/ledgers/totals",
    "/v1/ledgers/government/000000",
    "/v1/ledgers/government/440000",
    "/v1/methodologies",
    "/readyz",
)
MB = 1024 * 1024


@dataclass(frozen=True)
class ApiLoad:
    base_url: str
    clients: int = 200
    seconds: float = 30.0
    timeout: float = 10.0  # per request: a request slower than this counts as a timeout
    paths: Sequence[str] = DEFAULT_PATHS


@dataclass
class ApiLoadReport:
    clients: int
    seconds: float
    requests: int = 0
    timeouts: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # no answer: the exception's name
    latencies: list[float] = field(default_factory=list)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.by_status.items() if status.startswith("5"))

    def percentile(self, p: float) -> float:
        """The p-th percentile of answered requests' latency in ms (nearest rank)."""
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        return 1000 * ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    def summary(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "seconds": round(self.seconds, 1),
            "requests": self.requests,
            "requests_per_second": round(self.requests / self.seconds, 1) if self.seconds else 0,
            "timeouts": self.timeouts,
            "by_status": dict(sorted(self.by_status.items())),
            "errors": dict(sorted(self.errors.items())),
            "p50_ms": round(self.percentile(50), 1),
            "p99_ms": round(self.percentile(99), 1),
            "max_ms": round(1000 * max(self.latencies, default=math.nan), 1),
        }


def drive_api(load: ApiLoad) -> ApiLoadReport:
    """N clients, each one request at a time, for S seconds."""
    return asyncio.run(_drive(load))


async def _drive(load: ApiLoad) -> ApiLoadReport:
    report = ApiLoadReport(clients=load.clients, seconds=load.seconds)
    limits = httpx.Limits(max_connections=load.clients, max_keepalive_connections=load.clients)
    timeout = httpx.Timeout(load.timeout)
    started = time.monotonic()
    deadline = started + load.seconds
    async with httpx.AsyncClient(base_url=load.base_url, limits=limits, timeout=timeout) as http:
        await asyncio.gather(
            *(_client(http, load, n, deadline, report) for n in range(load.clients))
        )
    report.seconds = time.monotonic() - started
    return report


async def _client(
    http: httpx.AsyncClient, load: ApiLoad, n: int, deadline: float, report: ApiLoadReport
) -> None:
    paths = load.paths
    # Each client starts at its own place in the paths, so all of them are asked at once.
    for path in itertools.islice(itertools.cycle(paths), n % len(paths), None):
        if time.monotonic() >= deadline:
            return
        sent = time.monotonic()
        report.requests += 1
        try:
            # The whole request, waiting for a connection included, within the timeout.
            async with asyncio.timeout(load.timeout):
                answer = await http.get(path)
        except (TimeoutError, httpx.TimeoutException):
            report.timeouts += 1
            continue
        except httpx.HTTPError as failed:
            report.errors[type(failed).__name__] += 1
            await asyncio.sleep(0.1)  # a refused connection fails at once: do not spin
            continue
        report.latencies.append(time.monotonic() - sent)
        report.by_status[str(answer.status_code)] += 1


def account_paths(personal: Sequence[str], enterprise: Sequence[str]) -> list[str]:
    """The ledgers of some accounts that have postings, to read besides the fixed routes."""
    return [f"/v1/ledgers/personal/{s}" for s in personal] + [
        f"/v1/ledgers/enterprise/{p}" for p in enterprise
    ]


# --- oversized bodies to the gateway ----------------------------------------------------


@dataclass(frozen=True)
class BodyLoad:
    url: str  # the gateway's /v1/events
    gateway_pid: int
    bodies: int = 4
    megabytes: int = 200
    timeout: float = 120.0


@dataclass
class BodyReport:
    bodies: int
    megabytes: int
    rss_before_mb: float = 0.0
    rss_peak_mb: float = 0.0
    answers: Counter[str] = field(default_factory=Counter)  # status, or the exception's name
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "bodies": self.bodies,
            "megabytes_each": self.megabytes,
            "rss_before_mb": round(self.rss_before_mb, 1),
            "rss_peak_mb": round(self.rss_peak_mb, 1),
            "answers": dict(sorted(self.answers.items())),
            "seconds": round(self.seconds, 1),
        }


def refuse_bodies(load: BodyLoad) -> BodyReport:
    """K oversized unauthenticated bodies at once; the gateway's RSS sampled throughout."""
    report = BodyReport(bodies=load.bodies, megabytes=load.megabytes)
    report.rss_before_mb = tree_rss(load.gateway_pid) / MB
    report.rss_peak_mb = report.rss_before_mb
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            report.rss_peak_mb = max(report.rss_peak_mb, tree_rss(load.gateway_pid) / MB)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    try:
        asyncio.run(_send_bodies(load, report))
    finally:
        done.set()
        sampler.join()
    report.seconds = time.monotonic() - started
    return report


async def _send_bodies(load: BodyLoad, report: BodyReport) -> None:
    async with httpx.AsyncClient(timeout=httpx.Timeout(load.timeout)) as http:
        await asyncio.gather(
            *(
                _send_body(http, load, declared=n % 2 == 0, report=report)
                for n in range(load.bodies)
            )
        )


async def _send_body(
    http: httpx.AsyncClient, load: BodyLoad, *, declared: bool, report: BodyReport
) -> None:
    size = load.megabytes * MB
    headers = {
        "X-Carbon-Partner": "shenzhen-metro",
        "X-Carbon-Timestamp": str(int(time.time())),
        "X-Carbon-Signature": "0" * 64,  # unauthenticated: nobody's signature
        "Content-Type": "application/json",
    }
    if declared:
        headers["Content-Length"] = str(size)  # else httpx sends it chunked
    try:
        answer = await http.post(load.url, content=lazy_body(size), headers=headers)
    except httpx.HTTPError as failed:
        # The gateway may answer and close while the body is still being sent.
        report.answers[type(failed).__name__] += 1
    else:
        report.answers[str(answer.status_code)] += 1


async def lazy_body(size: int, chunk: int = MB) -> AsyncIterator[bytes]:
    """`size` bytes of a JSON array of blanks, made chunk by chunk as they are sent."""
    yield b"["
    block = b" " * chunk
    left = size - 1
    while left > 0:
        yield block[: min(chunk, left)]
        left -= chunk


def tree_rss(root: int) -> int:
    """Resident bytes of a process and its descendants (the stack runs each service
    under a restart loop), from /proc; 0 when it is gone."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid], rss[pid] = int(fields[1]), int(fields[21]) * _PAGE
    members, grown = {root}, True
    while grown:
        more = {pid for pid, parent in parents.items() if parent in members} - members
        members |= more
        grown = bool(more)
    return sum(rss.get(pid, 0) for pid in members)


_PAGE = os.sysconf("SC_PAGE_SIZE")
