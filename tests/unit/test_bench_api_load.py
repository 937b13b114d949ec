"""The HTTP load generator against a tiny local server: what it counts and how."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Iterator

import pytest

from carbonledger.bench import api_load
from carbonledger.bench.api_load import ApiLoad, ApiLoadReport


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A keep-alive server: /slow never answers in time, /boom is 503, the rest 200."""
    try:
        while True:
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
            path = head.split(" ")[1]
            if path == "/slow":
                await asyncio.sleep(5)
            status = "503 Service Unavailable" if path == "/boom" else "200 OK"
            writer.write(f"HTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\nok".encode())
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


@pytest.fixture()
def server() -> Iterator[str]:
    loop = asyncio.new_event_loop()
    started = loop.run_until_complete(asyncio.start_server(_answer, "127.0.0.1", 0))
    port = started.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    loop.call_soon_threadsafe(loop.stop)
    thread.join()


def test_clients_count_answers_by_status_and_timeouts(server: str) -> None:
    load = ApiLoad(server, clients=5, seconds=1.0, timeout=0.3, paths=["/ok", "/boom", "/slow"])
    report = api_load.drive_api(load)
    summary = report.summary()
    assert report.by_status["200"] > 0 and report.by_status["503"] > 0
    assert report.server_errors == report.by_status["503"]
    assert report.timeouts >= 1  # /slow: each client that asked for it gave up at 0.3 s
    assert report.requests == sum(report.by_status.values()) + report.timeouts
    assert summary["p50_ms"] <= summary["p99_ms"] < 300


def test_a_refused_connection_is_an_error_not_a_hang() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    report = api_load.drive_api(ApiLoad(f"http://127.0.0.1:{port}", clients=2, seconds=0.3))
    assert report.errors and not report.by_status and not report.timeouts


def test_percentiles_are_nearest_rank() -> None:
    report = ApiLoadReport(clients=1, seconds=1, latencies=[i / 1000 for i in range(1, 101)])
    assert (report.percentile(50), report.percentile(99)) == (50.0, 99.0)


def test_an_oversized_body_is_made_lazily_to_its_exact_size() -> None:
    async def sizes(body: AsyncIterator[bytes]) -> list[int]:
        return [len(chunk) async for chunk in body]

    made = asyncio.run(sizes(api_load.lazy_body(3 * api_load.MB + 5)))
    assert sum(made) == 3 * api_load.MB + 5 and max(made) == api_load.MB


def test_a_process_rss_is_read_from_proc() -> None:
    assert api_load.tree_rss(os.getpid()) > 10 * api_load.MB
    assert api_load.tree_rss(2**22 + 1) == 0  # no such process
