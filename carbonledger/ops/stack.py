"""The local stack: Kafka and PostgreSQL through the deploy scripts, and the services
as background OS processes with pid files and logs under the run folder."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from carbonledger.contracts import access
from carbonledger.contracts.services import SERVICES, Service
from carbonledger.contracts.settings import ROOT, Settings

SCRIPTS = ROOT / "deploy" / "local"


def command(service: Service, port: int, host: str = "127.0.0.1") -> list[str]:
    """The process, restarted after a crash as systemd or Kubernetes would.

    A clean exit (SIGTERM from `down`) ends the loop; `kill` signals the
    whole process group, loop included.
    """
    argv = " ".join(shlex.quote(a) for a in program(service, port, host))
    return ["bash", "-c", f"while :; do {argv} && break; sleep 1; done"]


def program(service: Service, port: int, host: str = "127.0.0.1") -> list[str]:
    if service.kind == "uvicorn":
        return [
            sys.executable,
            "-m",
            "uvicorn",
            service.module,
            "--host",
            host,
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
    return [sys.executable, "-m", service.module]


def ready_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/readyz"


def script(
    name: str,
    action: str,
    settings: Settings,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> int:
    return _run_script(name, action, settings, check, env, capture=False).returncode


def script_output(name: str, action: str, settings: Settings) -> tuple[int, str]:
    """Run a deploy script and return its exit code and what it printed."""
    done = _run_script(name, action, settings, check=False, env=None, capture=True)
    return done.returncode, done.stdout


def _run_script(
    name: str,
    action: str,
    settings: Settings,
    check: bool,
    env: dict[str, str] | None,
    capture: bool,
) -> subprocess.CompletedProcess[str]:
    env = {
        **(env or {}),
        **os.environ,
        "CARBON_RUN_DIR": str(settings.run_dir),
        "CARBON_KAFKA_HOST": settings.kafka_host,
        "CARBON_KAFKA_PORT": str(settings.kafka_port),
        "CARBON_PG_HOST": settings.pg_host,
        "CARBON_PG_PORT": str(settings.pg_port),
        "CARBON_PG_USER": settings.pg_user,
        "CARBON_PG_PASSWORD": settings.pg_password.get_secret_value(),
        "CARBON_PG_DATABASE": settings.pg_database,
        "CARBON_KAFKA_SECRET_ADMIN": settings.as_principal(access.ADMIN).kafka_secret(),
    }
    done = subprocess.run(
        ["bash", str(SCRIPTS / f"{name}.sh"), action],
        env=env,
        check=False,
        text=True,
        stdout=subprocess.PIPE if capture else None,
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"{name}.sh {action} failed with exit code {done.returncode}")
    return done


class Processes:
    """Start, stop, kill and inspect service processes of one run folder."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pids = settings.run_dir / "pids"
        self.logs = settings.run_dir / "logs"

    def _pidfile(self, name: str, worker: int) -> Path:
        return self.pids / f"{name}-{worker}.pid"

    def port(self, name: str, worker: int = 0) -> int:
        return SERVICES[name].base_port + self.settings.port_offset + worker

    def pid(self, name: str, worker: int = 0) -> int | None:
        path = self._pidfile(name, worker)
        if not path.exists():
            return None
        pid = int(path.read_text())
        return pid if _alive(pid) else None

    def start(self, name: str, worker: int = 0, env: dict[str, str] | None = None) -> int:
        running = self.pid(name, worker)
        if running:
            return running
        service = SERVICES[name]
        self.pids.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        port = self.port(name, worker)
        if not _port_freed(port):  # a stray process would answer our readiness probes
            raise RuntimeError(f"port {port} for {name}-{worker} is used by another process")
        child_env = {
            **{k: v for k, v in os.environ.items() if k != "CARBON_KAFKA_PASSWORD"},
            **self.principal_env(service),
            **(env or {}),
            "CARBON_WORKER_ID": str(worker),
            "CARBON_SERVICE": name,  # the `service` of its log lines
            "CARBON_WEB_PORT": str(port),
            "CARBON_RUN_DIR": str(self.settings.run_dir),
            "PYTHONUNBUFFERED": "1",
        }
        with (self.logs / f"{name}-{worker}.log").open("ab") as log:
            proc = subprocess.Popen(
                command(service, port, self.settings.web_host),
                cwd=ROOT,
                env=child_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._pidfile(name, worker).write_text(str(proc.pid))
        return proc.pid

    def principal_env(self, service: Service) -> dict[str, str]:
        """Each service connects as its own principal; its secret comes from the
        environment (CARBON_KAFKA_SECRET_SVC_<NAME>), never the operator's."""
        if not service.kafka:
            return {}
        return {"CARBON_KAFKA_USERNAME": access.service_principal_name(service.name)}

    def ready(self, name: str, worker: int = 0) -> bool:
        if not self.pid(name, worker):
            return False
        try:
            url = ready_url(self.port(name, worker))
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def wait_ready(self, name: str, worker: int = 0, timeout: float = 120) -> None:
        def ready_or_exited() -> bool:
            if self.ready(name, worker):
                return True
            if not self.pid(name, worker):
                raise RuntimeError(f"{name}-{worker} exited; see {self.logs}/{name}-{worker}.log")
            return False

        if not _poll(ready_or_exited, timeout, interval=0.3):
            raise TimeoutError(f"{name}-{worker} not ready after {timeout:.0f} s")

    def stop(self, name: str, worker: int = 0, timeout: float = 30) -> None:
        pid = self.pid(name, worker)
        if pid:
            _signal_group(pid, signal.SIGTERM)
            if not _wait_gone(pid, timeout):
                _signal_group(pid, signal.SIGKILL)
                _wait_gone(pid, 10)
        self._pidfile(name, worker).unlink(missing_ok=True)

    def kill(self, name: str, worker: int = 0) -> None:
        """SIGKILL: the crash that exactly-once-in-effect must survive."""
        pid = self.pid(name, worker)
        if pid:
            _signal_group(pid, signal.SIGKILL)
            _wait_gone(pid, 10)
        self._pidfile(name, worker).unlink(missing_ok=True)

    def running(self) -> list[tuple[str, int]]:
        found = []
        for path in sorted(self.pids.glob("*.pid")) if self.pids.exists() else []:
            name, _, worker = path.stem.rpartition("-")
            if name in SERVICES and self.pid(name, int(worker)):
                found.append((name, int(worker)))
        return found


def _poll(done: Callable[[], bool], timeout: float, interval: float) -> bool:
    """Whether `done()` came true within `timeout` seconds, asked every `interval`;
    an exception from `done` ends the wait at once."""
    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        retry=retry_if_result(lambda ok: not ok),
        retry_error_callback=lambda _state: False,
    )
    return bool(retrying(done))


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _port_freed(port: int, timeout: float = 20) -> bool:
    """Whether the port is free, allowing a just-killed process time to let go of it."""
    return _poll(lambda: not _port_taken(port), timeout, interval=0.2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of this process counts as gone
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:
        return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _wait_gone(pid: int, timeout: float) -> bool:
    return _poll(lambda: not _alive(pid), timeout, interval=0.05)
