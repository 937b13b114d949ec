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
import contextlib
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
from urllib.parse import urlsplit

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
    # A bearer token every request carries (the read routes need one: docs/access.md).
    token: str | None = None


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
    started = time.monotonic()
    deadline = started + load.seconds
    await asyncio.gather(*(_client(load, n, deadline, report) for n in range(load.clients)))
    report.seconds = time.monotonic() - started
    return report


async def _client(load: ApiLoad, n: int, deadline: float, report: ApiLoadReport) -> None:
    """One reader: its own keep-alive connection, one request at a time."""
    host, port = _host_port(load.base_url)
    connection: Http11 | None = None
    # Each client starts at its own place in the paths, so all of them are asked at once.
    for path in itertools.islice(itertools.cycle(load.paths), n % len(load.paths), None):
        if time.monotonic() >= deadline:
            break
        sent = time.monotonic()
        report.requests += 1
        try:
            # The whole request, connecting included, within the timeout.
            async with asyncio.timeout(load.timeout):
                connection = connection or await Http11.open(host, port, load.token)
                status = await connection.get(path)
        except TimeoutError:
            report.timeouts += 1
            _closed(connection)
            connection = None  # its answer may still come: never read it as the next one
            continue
        except (OSError, asyncio.IncompleteReadError, ValueError) as failed:
            report.errors[type(failed).__name__] += 1
            _closed(connection)
            connection = None
            await asyncio.sleep(0.1)  # a refused connection fails at once: do not spin
            continue
        report.latencies.append(time.monotonic() - sent)
        report.by_status[str(status)] += 1
    _closed(connection)


class Http11:
    """A keep-alive HTTP/1.1 connection that GETs and reads each answer in full.

    A few lines of asyncio streams rather than an HTTP client library: at 200 clients
    a general client's own overhead was the bottleneck of the measurement (and this
    floor ships without a client library)."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, token: str | None = None
    ) -> None:
        self.reader, self.writer = reader, writer
        self.authorization = f"Authorization: Bearer {token}\r\n" if token else ""

    @classmethod
    async def open(cls, host: str, port: int, token: str | None = None) -> Http11:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, token)

    async def get(self, path: str) -> int:
        """The answer's status; its body read and dropped."""
        head = f"GET {path} HTTP/1.1\r\nHost: load\r\n{self.authorization}\r\n"
        self.writer.write(head.encode())
        await self.writer.drain()
        return await read_answer(self.reader)

    def close(self) -> None:
        self.writer.close()


async def read_answer(reader: asyncio.StreamReader) -> int:
    """Reads one HTTP/1.1 answer with a Content-Length body; returns its status."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    fields = dict(line.split(":", 1) for line in head[1:] if ":" in line)
    length = {k.strip().lower(): v.strip() for k, v in fields.items()}.get("content-length")
    if length is None:
        raise ValueError("an answer without Content-Length")
    await reader.readexactly(int(length))
    return status


def _closed(connection: Http11 | None) -> None:
    if connection is not None:
        connection.close()


def _host_port(base_url: str) -> tuple[str, int]:
    found = urlsplit(base_url)
    return found.hostname or "127.0.0.1", found.port or 80


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
    timeout: float = 120.0  # for the answer, once the body is sent or refused


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
    await asyncio.gather(*(_send_body(load, n % 2 == 0, report) for n in range(load.bodies)))


async def _send_body(load: BodyLoad, declared: bool, report: BodyReport) -> None:
    """One unauthenticated oversized POST, with a Content-Length or chunked; the body
    is sent until the gateway answers (or closes), and the answer's status counted."""
    host, port = _host_port(load.url)
    size = load.megabytes * MB
    reader, writer = await asyncio.open_connection(host, port)
    framing = f"Content-Length: {size}" if declared else "Transfer-Encoding: chunked"
    writer.write(
        f"POST {urlsplit(load.url).path} HTTP/1.1\r\nHost: load\r\n"
        "X-Carbon-Partner: shenzhen-metro\r\n"
        f"X-Carbon-Timestamp: {int(time.time())}\r\n"
        f"X-Carbon-Signature: {'0' * 64}\r\n"  # nobody's signature
        f"Content-Type: application/json\r\n{framing}\r\n\r\n".encode()
    )
    answer = asyncio.create_task(read_answer(reader))
    with contextlib.suppress(OSError):  # the gateway closed the connection after answering
        await _stream(writer, lazy_body(size), declared, answer)
    try:
        async with asyncio.timeout(load.timeout):
            report.answers[str(await answer)] += 1
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as failed:
        report.answers[type(failed).__name__] += 1
    finally:
        writer.close()


async def _stream(
    writer: asyncio.StreamWriter,
    chunks: AsyncIterator[bytes],
    declared: bool,
    answer: asyncio.Task[int],
) -> None:
    async for chunk in chunks:
        if answer.done():
            return  # answered before the end: stop sending, as a client would
        writer.write(chunk if declared else b"%x\r\n%s\r\n" % (len(chunk), chunk))
        await writer.drain()
    if not declared:
        writer.write(b"0\r\n\r\n")
        await writer.drain()


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
