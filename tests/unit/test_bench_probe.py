"""The benchmark's /proc probe: a process tree whose members exit still reads as one
process whose CPU only grows (a backend exiting is not a restart)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from carbonledger.bench.probe import ProcessTree, postmaster_pid


def test_a_tree_counts_a_child_that_exits_and_never_goes_backwards() -> None:
    tree = ProcessTree(os.getpid())
    baseline = tree.read()
    assert baseline is not None and baseline.cpu_seconds == 0.0
    # CPU time, not wall time: on a starved machine the child still does its work.
    burn = "import time\nwhile time.process_time() < 1.5: pass"
    child = subprocess.Popen([sys.executable, "-c", burn])
    deadline = time.monotonic() + 60
    during = tree.read()
    while child.poll() is None and time.monotonic() < deadline:
        if (during := tree.read()) is not None and during.cpu_seconds > 0.1:
            break
        time.sleep(0.1)
    assert child.poll() is None, "the child ended before it was read while running"
    child.wait()
    after = tree.read()
    assert during is not None and after is not None
    assert during.cpu_seconds > 0.1  # the child's work is counted while it runs
    assert after.cpu_seconds >= during.cpu_seconds  # and its exit takes nothing back


def test_a_missing_root_reads_as_nothing() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert ProcessTree(child.pid).read() is None


def test_a_process_alone_leaves_its_children_out() -> None:
    alone = ProcessTree(os.getpid(), descendants=False)
    alone.read()
    burn = "import time\nend = time.time() + 0.6\nwhile time.time() < end: pass"
    child = subprocess.Popen([sys.executable, "-c", burn])
    time.sleep(0.4)
    during = alone.read()
    child.wait()
    assert during is not None and during.cpu_seconds < 0.1


class _Backend:
    """A stand-in connection whose 'backend' is a real child of a real 'postmaster'
    process, and exits when the connection closes, as PostgreSQL's does."""

    def __init__(self) -> None:
        spawn = (
            "import subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(30)"
        )
        self.postmaster = subprocess.Popen(
            [sys.executable, "-c", spawn], stdout=subprocess.PIPE, text=True
        )
        assert self.postmaster.stdout is not None
        self.backend = int(self.postmaster.stdout.readline())

    def execute(self, query: str) -> _Backend:
        assert query == "SELECT pg_backend_pid()"
        return self

    def fetchone(self) -> tuple[int]:
        return (self.backend,)

    def close(self) -> None:
        os.kill(self.backend, 9)
        self.postmaster.kill()
        self.postmaster.wait()


def test_the_postmaster_is_found_while_the_backend_still_runs() -> None:
    conn = _Backend()
    try:
        assert postmaster_pid(conn) == conn.postmaster.pid  # type: ignore[arg-type]
    finally:
        conn.close()
