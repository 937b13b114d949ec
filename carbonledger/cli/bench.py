"""`bench`: a simulated city through the running services, measured."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from carbonledger.cli.common import finish, progress_bar
from carbonledger.contracts.settings import load_settings


def bench(
    people: Annotated[int, typer.Option("--people", help="people in the city")] = 100_000,
    activities: Annotated[
        int, typer.Option("--activities", help="activities to simulate")
    ] = 200_000,
    rate: Annotated[
        float, typer.Option("--rate", help="records/s offered (0: as fast as possible)")
    ] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="seed of the simulated city")] = 2026,
    relay: Annotated[
        bool, typer.Option("--relay", help="also measure the plain-aiokafka ceiling")
    ] = False,
    fresh: Annotated[bool, typer.Option("--fresh", help="reset the local stack first")] = False,
    workers: Annotated[int, typer.Option("--workers", help="processes per consumer group")] = 1,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="write the report as JSON here")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="write PNG charts into this folder")
    ] = None,
) -> None:
    """Run the simulated city and report figures (exit 1 if the books are wrong)."""
    from carbonledger.bench import report as bench_report
    from carbonledger.bench.run import BenchOptions, run_bench

    options = BenchOptions(
        people=people,
        activities=activities,
        rate=rate,
        seed=seed,
        relay=relay,
        fresh=fresh,
        workers=workers,
        json_out=json_out,
        plot=plot,
    )
    with progress_bar("sending activities") as progress:
        report, latencies = run_bench(load_settings(), options, progress=progress)
    print(bench_report.table(report))
    if json_out:
        json_out.write_text(json.dumps(report, indent=2))
        print(f"wrote {json_out}")
    if plot:
        for path in bench_report.plot(report, latencies, plot):
            print(f"wrote {path}")
    finish(0 if report["correct"] else 1)


PANEL = "Development"


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel=PANEL)(bench)
