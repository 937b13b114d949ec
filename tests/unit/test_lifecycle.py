"""A failed `up` (and so a failed `make demo`) stops what it started and names the logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from carbonledger.contracts.settings import Settings
from carbonledger.ops import lifecycle, stack


class Stack:
    """The deploy scripts and service processes, as calls recorded; kafka starts, then
    a service fails to become ready."""

    def __init__(self, up_before: set[str]) -> None:
        self.up = set(up_before)
        self.calls: list[str] = []

    def script(self, name: str, action: str, settings: Settings, check: bool = True) -> int:
        self.calls.append(f"{name} {action}")
        if action == "start":
            self.up.add(name)
        if action == "stop":
            self.up.discard(name)
        return 0

    def script_output(self, name: str, action: str, settings: Settings) -> tuple[int, str]:
        return (0 if name in self.up else 1), ""


def failing_start(settings: Settings, workers: int) -> None:
    stack.script("kafka", "start", settings)
    stack.script("postgres", "start", settings)
    raise RuntimeError("ingest-0 exited; see .run/logs/ingest-0.log")


@pytest.fixture()
def parts(monkeypatch: pytest.MonkeyPatch) -> Stack:
    fake = Stack(up_before=set())
    monkeypatch.setattr(stack, "script", fake.script)
    monkeypatch.setattr(stack, "script_output", fake.script_output)
    monkeypatch.setattr(lifecycle, "_start", failing_start)
    return fake


def test_a_failed_start_stops_the_broker_and_database_it_started(
    parts: Stack, tmp_path: Path
) -> None:
    settings = Settings(run_dir=tmp_path)
    with pytest.raises(lifecycle.StartFailed) as failed:
        lifecycle.up(settings)
    assert parts.up == set()
    assert parts.calls[-2:] == ["postgres stop", "kafka stop"]
    message = str(failed.value)
    assert "ingest-0 exited" in message and str(tmp_path / "kafka" / "kafka.out") in message


def test_a_failed_start_leaves_running_what_was_running_before(
    parts: Stack, tmp_path: Path
) -> None:
    parts.up.add("kafka")
    with pytest.raises(lifecycle.StartFailed):
        lifecycle.up(Settings(run_dir=tmp_path))
    assert parts.up == {"kafka"}
