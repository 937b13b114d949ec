"""Metrics and the local Prometheus: `monitoring metrics|lint|config|start|stop|status`."""

from __future__ import annotations

from dataclasses import asdict

import typer

from carbonledger.cli.common import JsonFlag, finish, show_rows
from carbonledger.contracts.settings import load_settings
from carbonledger.ops import stack

monitoring_app = typer.Typer(
    help="Metrics, naming lint, and a local Prometheus.", no_args_is_help=True
)


@monitoring_app.command()
def metrics(as_json: JsonFlag = False) -> None:
    """Every metric family the services export: name, type, labels, help."""
    from carbonledger.ops import monitoring as mon

    families = mon.exported_families()
    show_rows(
        [asdict(f) for f in families],
        [f"{f.name:<58} {f.type:<9} {{{','.join(f.labels)}}}  {f.documentation}" for f in families],
        ["name", "type", "labels", "documentation"],
        as_json,
    )


@monitoring_app.command()
def lint() -> None:
    """Check metric names, alert rules and dashboards against the families (exit 1 if not)."""
    from carbonledger.ops import monitoring as mon

    families = mon.exported_families()
    problems = mon.naming_problems(families) + mon.rule_problems(
        [*mon.all_rules(), *mon.dashboard_queries()], families
    )
    print("\n".join(problems) or f"{len(families)} metric families, rules and dashboards: ok")
    finish(1 if problems else 0)


@monitoring_app.command()
def config() -> None:
    """Print the local stack's Prometheus scrape configuration."""
    from carbonledger.ops import monitoring as mon

    print(mon.render(mon.scrape_config(load_settings())), end="")


@monitoring_app.command()
def start() -> None:
    """Start the local Prometheus on the stack's metrics."""
    from carbonledger.ops import monitoring as mon

    settings = load_settings()
    path = mon.write_local_config(settings)
    stack.script("prometheus", "start", settings, env=mon.prometheus_env(settings, path))
    print(f"prometheus: http://127.0.0.1:{settings.prometheus_port + settings.port_offset}")


def _prometheus(action: str) -> None:
    from carbonledger.ops import monitoring as mon

    settings = load_settings()
    finish(
        stack.script("prometheus", action, settings, check=False, env=mon.prometheus_env(settings))
    )


@monitoring_app.command()
def stop() -> None:
    """Stop the local Prometheus."""
    _prometheus("stop")


@monitoring_app.command()
def status() -> None:
    """Whether the local Prometheus is up (its script's exit code)."""
    _prometheus("status")


PANEL = "Operations"


def register(app: typer.Typer) -> None:
    app.add_typer(monitoring_app, name="monitoring", rich_help_panel=PANEL)
