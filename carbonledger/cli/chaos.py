"""`chaos`: the chaos and fuzz suite against a running stack (docs/operations.md)."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict
from typing import Annotated

import typer

from carbonledger.cli.common import finish
from carbonledger.contracts.settings import load_settings

chaos = typer.Typer(
    help="Hostile input and faults against the running stack (exit 1 on any surprise).",
    no_args_is_help=True,
)


def _say(line: str) -> None:
    print(line, file=sys.stderr)


@chaos.command()
def hostile(
    case: Annotated[
        list[str] | None,
        typer.Option("--case", help="only this case (repeat for more); default: every case"),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="seconds to wait for every outcome")
    ] = 180.0,
    as_json: Annotated[bool, typer.Option("--json", help="print the verdicts as JSON")] = False,
) -> None:
    """Send the hostile inputs and the internal poison; one verdict per input.

    Each partner input goes over Kafka and HTTP, alone and then with a valid control
    event; each poison is written to its internal topic as the admin principal."""
    from carbonledger.bench.chaos import attack, hostile, poison, verdict

    wanted = set(case or ())
    unknown = wanted - hostile.CASES.keys() - poison.CASES.keys()
    if unknown:
        raise typer.BadParameter(f"no such case: {', '.join(sorted(unknown))}", param_hint="--case")
    report = attack.run_tables(
        load_settings(),
        [c for c in hostile.HOSTILE if not wanted or c.name in wanted],
        [c for c in poison.POISON if not wanted or c.name in wanted],
        timeout=timeout,
        progress=_say,
    )
    failed = [v for v in report.verdicts if not v.ok]
    if as_json:
        doc = {
            "ok": report.ok,
            "restarted": report.restarted,
            "verdicts": [asdict(v) | {"ok": v.ok} for v in report.verdicts],
        }
        print(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        print(verdict.table(report.verdicts))
        print(
            f"{len(report.verdicts) - len(failed)} of {len(report.verdicts)} inputs as expected"
            f" in {report.seconds} s; restarted: {', '.join(report.restarted) or 'none'}"
        )
    finish(0 if report.ok else 1)


@chaos.command()
def faults(
    runs: Annotated[int, typer.Option("--runs", help="fault runs (the faults in turn)")] = 6,
    rate: Annotated[
        float, typer.Option("--rate", help="partner records per second (0: flat out)")
    ] = 600.0,
    activities: Annotated[int, typer.Option("--activities", help="activities per run")] = 3_000,
    fault: Annotated[
        list[str] | None,
        typer.Option("--fault", help="only this fault, e.g. sigkill:dedupe, restart:kafka"),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="seed of the traffic and moments")] = 2026,
    as_json: Annotated[bool, typer.Option("--json", help="print the runs as JSON")] = False,
) -> None:
    """Fault runs under load; books = settle, verify ok, nothing lost or doubled.

    Each run SIGKILLs a stage, or restarts the broker or the database, at a random
    moment of a steady stream of the benchmark's city traffic."""
    from carbonledger.bench.chaos.faults import FAULTS, FaultOptions, fault_runs, table

    # The clients' own complaints while the broker is away are the fault, not news.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    chosen = tuple(fault or FAULTS)
    unknown = set(chosen) - set(FAULTS)
    if unknown:
        raise typer.BadParameter(
            f"no such fault: {', '.join(sorted(unknown))}", param_hint="--fault"
        )
    options = FaultOptions(activities=activities, rate=rate, seed=seed)
    done = fault_runs(load_settings(), runs, options, chosen, progress=_say)
    if as_json:
        print(json.dumps([asdict(r) | {"ok": r.ok} for r in done], indent=2))
    else:
        print(table(done))
    finish(0 if all(r.ok for r in done) else 1)


PANEL = "Development"


def register(app: typer.Typer) -> None:
    app.add_typer(chaos, name="chaos", rich_help_panel=PANEL)
