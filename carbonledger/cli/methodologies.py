"""The methodology registry: `methodologies list|show|publish`, and `recompute` after a
new version."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from carbonledger.cli.common import JsonFlag, day_option, fail, progress_bar, show_rows
from carbonledger.contracts.settings import load_settings

if TYPE_CHECKING:
    from carbonledger.contracts.methodology import Methodology

methodologies_app = typer.Typer(
    help="List, show or publish methodology versions.", no_args_is_help=True
)

RegistryOption = Annotated[
    Path | None,
    typer.Option("--registry", help="methodology folder (default: the settings')"),
]


@methodologies_app.command("list")
def list_methodologies(registry: RegistryOption = None, as_json: JsonFlag = False) -> None:
    """Every version, active or not: region, validity, formula and behaviours."""
    from carbonledger.contracts.methodology import superseded
    from carbonledger.contracts.methodology_files import load_methodologies

    shown = sorted(
        load_methodologies(registry or load_settings().methodology_dir),
        key=lambda m: (m.id, m.version),
    )
    retired = superseded(shown)

    def status(m: Methodology) -> str:
        if (m.id, m.version) in retired:
            return "superseded"
        return "active" if m.active else "inactive"

    rows: list[dict[str, Any]] = [
        {
            "id": m.id,
            "version": m.version,
            "active": m.active and (m.id, m.version) not in retired,
            "status": status(m),
            "issuer_kind": m.issuer_kind.value,
            "partners": sorted(m.partners),
            "region": m.region,
            "valid_from": str(m.valid_from),
            "valid_to": str(m.valid_to) if m.valid_to else None,
            "formula": m.formula.value,
            "behaviours": sorted(m.behaviours),
            "title_zh": m.title_zh,
        }
        for m in shown
    ]
    lines = [
        f"{m.id + '@' + m.version:<34} {status(m):<10} {_scope(m):<24} "
        f"{m.region:<8} from {m.valid_from}  "
        f"{m.formula.value:<22} {', '.join(sorted(m.behaviours))}  {m.title_zh}"
        for m in shown
    ]
    columns = ["id", "version", "status", "issuer_kind", "region", "valid_from", "formula"]
    show_rows(rows, lines, [*columns, "behaviours", "title_zh"], as_json)


def _scope(m: Methodology) -> str:
    """The issuer kind, with the partners of a partner-scoped version."""
    partners = ",".join(sorted(m.partners))
    return f"{m.issuer_kind.value}:{partners}" if partners else m.issuer_kind.value


@methodologies_app.command()
def show(
    ids: Annotated[list[str] | None, typer.Argument(help="methodology ids")] = None,
    registry: RegistryOption = None,
) -> None:
    """Every version of these methodologies, as JSON (exit 1 if there is none)."""
    from carbonledger.contracts.methodology_files import load_methodologies

    wanted = ids or []
    methodologies = load_methodologies(registry or load_settings().methodology_dir)
    shown = [m for m in methodologies if m.id in wanted]
    if not shown:
        fail(f"no methodology {', '.join(wanted)}", 1)
    for m in shown:
        print(json.dumps(m.model_dump(mode="json"), ensure_ascii=False, indent=2, sort_keys=True))


@methodologies_app.command()
def publish(
    files: Annotated[list[Path] | None, typer.Argument(help="new version files")] = None,
) -> None:
    """Record new version files' checksums; a published version cannot change."""
    from carbonledger.contracts.methodology_files import publish as lock

    for path in files or []:
        print(f"published {path.name}: sha256 {lock(path)}")


def recompute(
    methodology: Annotated[
        str,
        typer.Option("--methodology", help="methodology id the events were credited under"),
    ],
    first: Annotated[date, day_option("--from", "first day of the period")],
    last: Annotated[date, day_option("--to", "last day of the period, included")],
    registry: RegistryOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count, publish nothing")] = False,
) -> None:
    """Correcting claims for a period after a methodology version changes."""
    from carbonledger.ops.recompute import recompute as correct

    with progress_bar("examining claims") as progress:
        result = correct(
            load_settings(), methodology, first, last, registry, dry_run, progress=progress
        )
    print(json.dumps(result, indent=2))


PANEL = "Methodologies and the batch reference"


def register(app: typer.Typer) -> None:
    app.add_typer(methodologies_app, name="methodologies", rich_help_panel=PANEL)
    app.command(rich_help_panel=PANEL)(recompute)
