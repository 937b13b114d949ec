"""The command line's parsing, help, --version and --json, without a running stack."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from carbonledger import __version__
from carbonledger.cli import common
from carbonledger.cli.app import app, main

runner = CliRunner()
ROOT_COMMAND = get_command(app)


def command_paths(command: Any = ROOT_COMMAND, path: tuple[str, ...] = ()) -> Iterator[Any]:
    """(path, command) for every command and group under `carbonledger`."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from command_paths(sub, (*path, name))


ALL_COMMANDS = list(command_paths())


def test_the_commands_are_the_ones_operators_and_scripts_use() -> None:
    names = {" ".join(path) for path, _ in ALL_COMMANDS}
    assert names >= {
        "up", "down", "status", "reset", "demo", "topics create", "topics list",
        "kafka-access", "db migrate", "employer link", "verify", "export", "verify-export",
        "settle", "quantify", "recompute", "methodologies list", "methodologies show",
        "methodologies publish", "dlq list", "dlq show", "dlq replay", "monitoring metrics",
        "monitoring lint", "monitoring config", "monitoring start", "monitoring stop",
        "monitoring status", "bench", "schemas", "sample", "chaos hostile", "chaos faults",
    }  # fmt: skip


# The registry's commands and flags as issue 21 names them: operators script them.
REGISTRY_FLAGS = {
    "registry issue": {
        "--region", "--methodology", "--from", "--to", "--package", "--verifier", "--unit-type",
        "--manifest-hash", "--verified-at",
    },
    "registry account create": {"--id", "--name", "--kind", "--request-id"},
    "registry transfer": {
        "--from", "--to", "--units", "--price-fen", "--venue", "--date", "--request-id",
    },
    "registry retire": {
        "--account", "--units", "--beneficiary", "--purpose", "--period-from", "--period-to",
        "--serial", "--request-id",
    },
    "registry show": set(),
    "registry balance": set(),
}  # fmt: skip


def test_the_registry_commands_keep_the_names_and_flags_operators_script() -> None:
    commands = {" ".join(path): command for path, command in ALL_COMMANDS}
    for name, flags in REGISTRY_FLAGS.items():
        options = {o for p in commands[name].params for o in getattr(p, "opts", ())}
        assert options - {"--help"} >= flags, name
        assert options - {"--help"} <= flags | {p.name for p in commands[name].params}, name


def test_registry_issue_runs_with_exactly_the_flags_the_issue_lists() -> None:
    # --manifest-hash is optional: absent, the package's own hash is the one signed.
    commands = {" ".join(path): command for path, command in ALL_COMMANDS}
    required = {o for p in commands["registry issue"].params if p.required for o in p.opts}
    assert required == {"--region", "--methodology", "--from", "--to", "--package", "--verifier"}


def test_a_refused_registry_operation_exits_2_with_its_reason() -> None:
    done = runner.invoke(app, ["registry", "show", "CN-CIER-not-a-serial"])
    assert done.exit_code == 2
    assert "is not a serial" in done.output


@pytest.mark.parametrize(
    ("path", "command"), ALL_COMMANDS, ids=[" ".join(p) or "carbonledger" for p, _ in ALL_COMMANDS]
)
def test_every_command_has_help_on_itself_and_each_parameter(
    path: tuple[str, ...], command: Any
) -> None:
    done = runner.invoke(app, [*path, "--help"])
    assert done.exit_code == 0, done.output
    assert "Usage: carbonledger" in done.output
    assert command.help, f"{path}: no help text"
    for param in command.params:
        assert getattr(param, "help", None), f"{path}: {param.name} has no help text"


def test_version_prints_the_package_version() -> None:
    done = runner.invoke(app, ["--version"])
    assert (done.exit_code, done.output) == (0, f"carbonledger {__version__}\n")
    assert main(["--version"]) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dlq", "list", "--stage", "ledger"], "--stage"),
        (["topics", "destroy"], "destroy"),
        (["db"], "migrate"),  # the group's help
        (["chaos", "hostile", "--case", "no-such-case"], "no-such-case"),
        (["chaos", "faults", "--fault", "sigkill:nothing"], "sigkill:nothing"),
        (["up", "--workers", "two"], "--workers"),
        (["export", "--region", "420100", "--from", "2026-13-01", "--to", "2026-10-31"], "--from"),
        (["export", "--from", "2026-10-01", "--to", "2026-10-31"], "--region"),
        (["recompute", "--from", "2026-10-01", "--to", "2026-10-31"], "--methodology"),
        (["verify", "--account", "government"], "BOOK:ACCOUNT"),
        (["employer", "link", "acme"], "SUBJECTS"),
        (["down", "--no-keep-infra"], "--no-keep-infra"),
    ],
)
def test_a_bad_command_line_exits_2_with_a_message(args: list[str], message: str) -> None:
    done = runner.invoke(app, args)
    assert done.exit_code == 2, done.output
    assert message.lower() in done.output.lower()


def test_refusals_before_any_connection_keep_their_messages_and_exit_codes() -> None:
    done = runner.invoke(app, ["dlq", "replay", "--stage", "ingest"])
    assert done.exit_code == 2
    assert "replay needs dead letter ids, --partner, --reason or --all" in done.output
    done = runner.invoke(app, ["employer", "link", "acme", "not-a-subject"])
    assert (done.exit_code, done.output) == (2, "not subject ids: not-a-subject\n")


def test_methodologies_list_json_has_every_version_and_the_lines_stay_plain() -> None:
    listed = runner.invoke(app, ["methodologies", "list", "--json"])
    assert listed.exit_code == 0
    versions = json.loads(listed.output)
    metro = next(m for m in versions if m["id"] == "guangzhou-metro-2017")
    assert (metro["version"], metro["active"], metro["region"]) == ("1", False, "4401")
    plain = runner.invoke(app, ["methodologies", "list"]).output.splitlines()
    assert len(plain) == len(versions)  # not a terminal: the lines, no table
    assert plain[versions.index(metro)].split()[:2] == ["guangzhou-metro-2017@1", "inactive"]


def test_topics_list_json_is_the_topic_map() -> None:
    done = runner.invoke(app, ["topics", "list", "--json"])
    assert done.exit_code == 0
    topics = {t["name"]: t for t in json.loads(done.output)}
    assert topics["behaviour.rejected"]["key"] == "partner id"
    plain = runner.invoke(app, ["topics", "list"]).output.splitlines()
    assert [line.split()[0] for line in plain] == list(topics)


def test_monitoring_metrics_json_lists_every_family() -> None:
    # Listing imports the faust apps: in a separate interpreter, as the command runs.
    done = subprocess.run(
        [sys.executable, "-m", "carbonledger.cli.main", "monitoring", "metrics", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    families = json.loads(done.stdout)
    assert len(families) > 40
    assert {"name", "type", "labels", "documentation"} <= set(families[0])


def test_status_json_reports_each_component_and_keeps_the_exit_code(tmp_path: Path) -> None:
    done = runner.invoke(app, ["status", "--json"], env={"CARBON_RUN_DIR": str(tmp_path)})
    assert done.exit_code == 3  # nothing runs under an empty run folder
    report = json.loads(done.output)
    states = {c["name"]: c["state"] for c in report["components"]}
    assert report["ok"] is False
    assert {"kafka", "postgres", "ingest-0", "ledger-writer-0"} <= set(states)
    assert set(states.values()) == {"down"}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_reported_only_to_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    with common.progress_bar("work") as progress:
        assert progress is None  # stderr is not a terminal under pytest
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    with common.progress_bar("work") as progress:
        assert progress is not None
        progress(1, 2)
        progress(2, 2)
    assert "work" in screen.getvalue()


def test_bench_traffic_reports_activities_sent_out_of_all() -> None:
    from carbonledger.bench.run import paced_batches
    from carbonledger.bench.traffic import CityProfile, CityTraffic

    heard: list[tuple[int, int | None]] = []
    city = CityTraffic(CityProfile(people=50, tag="p"))
    batches = list(paced_batches(city, 4500, 0.0, lambda done, total: heard.append((done, total))))
    assert heard == [(2000, 4500), (4000, 4500), (4500, 4500)]  # one report per batch
    assert len(batches) == 3
