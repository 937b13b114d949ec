"""The local stack's lifecycle: up, down, reset and status, as the CLI and the demo use them."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from carbonledger.contracts.partners import load_registry
from carbonledger.contracts.services import SERVICES
from carbonledger.contracts.settings import Settings
from carbonledger.ops import stack

SCALABLE = ("ingest", "quantify", "dedupe", "ledger-writer")


class StartFailed(RuntimeError):
    """`up` could not start the stack; what it had started is stopped again."""


def log_paths(settings: Settings) -> list[Path]:
    """Where the local stack's parts write what went wrong."""
    run = settings.run_dir
    return [run / "kafka" / "kafka.out", run / "postgres" / "log" / "postgres.log", run / "logs"]


def up(settings: Settings, workers: int = 1) -> None:
    """Start Kafka and PostgreSQL, migrate, create topics, start every service, wait until
    ready. On a failure, stops what this call started (not what was running before) and
    raises StartFailed naming the logs, so a failed start leaves no broker behind."""
    infra = {name: _script_up(name, settings) for name in ("kafka", "postgres")}
    services = set(stack.Processes(settings).running())
    try:
        _start(settings, workers)
    except (Exception, KeyboardInterrupt) as exc:
        _stop_started(settings, infra, services)
        logs = "\n  ".join(str(p) for p in log_paths(settings))
        raise StartFailed(f"the local stack did not start: {exc}\nlogs:\n  {logs}") from exc


def _script_up(name: str, settings: Settings) -> bool:
    code, _ = stack.script_output(name, "status", settings)
    return code == 0


def _stop_started(
    settings: Settings, infra: dict[str, bool], services: set[tuple[str, int]]
) -> None:
    processes = stack.Processes(settings)
    for name, worker in processes.running():
        if (name, worker) not in services:
            processes.stop(name, worker)
    for name in ("postgres", "kafka"):
        if not infra[name]:
            stack.script(name, "stop", settings, check=False)


def _start(settings: Settings, workers: int) -> None:
    from carbonledger.ops.admin import ensure_topics, topic_map
    from carbonledger.ops.kafka_access import access_map, apply_access
    from carbonledger.services.ledger.adapters.migrations import migrate

    stack.script("kafka", "start", settings)
    stack.script("postgres", "start", settings)
    for name in migrate(settings.pg_conninfo):
        print(f"applied migration {name}")
    created = ensure_topics(settings, topic_map(settings, load_registry(settings.partners_file)))
    if created:
        print(f"created topics: {', '.join(created)}")
    apply_access(settings, access_map(settings))
    processes = stack.Processes(settings)
    plan = [(name, w) for name in SERVICES for w in range(workers if name in SCALABLE else 1)]
    for name, w in plan:
        processes.start(name, w)
    for name, w in plan:
        processes.wait_ready(name, w)
        print(f"{name}-{w}: ready (pid {processes.pid(name, w)}, port {processes.port(name, w)})")


def down(settings: Settings, keep_infra: bool = False) -> None:
    """Stop the services (producers first), then PostgreSQL and Kafka unless kept."""
    processes = stack.Processes(settings)
    for name, worker in processes.running():
        processes.stop(name, worker)
        print(f"{name}-{worker}: stopped")
    if not keep_infra:
        stack.script("postgres", "stop", settings)
        stack.script("kafka", "stop", settings)


def reset(settings: Settings) -> None:
    """Stop everything and delete the local stack's data: topics, books, dedupe tables."""
    down(settings)
    stack.script("kafka", "reset", settings)
    stack.script("postgres", "reset", settings)
    shutil.rmtree(settings.run_dir / "faust", ignore_errors=True)
    print(f"local data under {settings.run_dir} deleted")


@dataclass(frozen=True)
class Component:
    """One part of the local stack and whether it is up ("up", "starting" or "down")."""

    name: str
    state: str
    detail: str | None = None

    @property
    def up(self) -> bool:
        return self.state == "up"

    def line(self) -> str:
        return f"{self.name}: {self.state}" + (f" ({self.detail})" if self.detail else "")


def components(settings: Settings) -> list[Component]:
    """Kafka, PostgreSQL and every service process, each with its state."""
    found = [_infrastructure(name, settings) for name in ("kafka", "postgres")]
    processes = stack.Processes(settings)
    running: dict[str, list[int]] = {name: [0] for name in SERVICES}
    for name, worker in processes.running():
        running[name] = sorted({*running[name], worker})
    for name, workers in running.items():
        for w in workers:
            pid = processes.pid(name, w)
            state = "up" if processes.ready(name, w) else ("starting" if pid else "down")
            detail = f"pid {pid}, http://127.0.0.1:{processes.port(name, w)}" if pid else None
            found.append(Component(f"{name}-{w}", state, detail))
    return found


def _infrastructure(name: str, settings: Settings) -> Component:
    """Kafka or PostgreSQL as its deploy script reports it (`name: up (detail)`)."""
    code, printed = stack.script_output(name, "status", settings)
    detail = printed.strip().partition(" (")[2].removesuffix(")") or None
    return Component(name, "up" if code == 0 else "down", detail)


def status(settings: Settings) -> int:
    """Print each component and whether it is up; exit 0 only when all are."""
    found = components(settings)
    for component in found:
        print(component.line())
    return 0 if all(c.up for c in found) else 3
