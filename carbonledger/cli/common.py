"""What every command module shares: exit codes, JSON and table output, progress bars.

Machine-readable output (JSON, and the plain lines of list commands when stdout is
not a terminal) is printed with `print` exactly as before Typer, so scripts and
tests that parse it see the same bytes. Rich only draws for a person at a terminal.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from typing import Annotated, Any

import typer

# How far a long piece of work is: (done, total), total None when not known up front.
Progress = Callable[[int, int | None], None]

JsonFlag = Annotated[bool, typer.Option("--json", help="print the data as JSON instead")]


def day_option(flag: str, help: str) -> Any:
    """A required calendar day option, YYYY-MM-DD (a bad day exits 2 with a message)."""
    return typer.Option(flag, parser=date.fromisoformat, metavar="YYYY-MM-DD", help=help)


def finish(code: int) -> None:
    """End the command with this exit code (0 simply returns)."""
    if code:
        raise typer.Exit(code)


def fail(message: str, code: int) -> None:
    print(message, file=sys.stderr)
    raise typer.Exit(code)


def print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def show_rows(
    rows: Sequence[dict[str, Any]],
    lines: Sequence[str],
    columns: Sequence[str],
    as_json: bool,
) -> None:
    """A listing: JSON with --json, a Rich table at a terminal, else the plain lines."""
    if as_json:
        print_json(list(rows))
    elif sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(box=None, header_style="bold")
        for n, column in enumerate(columns):
            table.add_column(column.replace("_", " "), no_wrap=n == 0)  # ids stay whole
        for row in rows:
            table.add_row(*(_cell(row.get(c)) for c in columns))
        Console(highlight=False).print(table)
    else:
        for line in lines:
            print(line)


def _cell(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return "" if value is None else str(value)


@contextlib.contextmanager
def progress_bar(description: str) -> Iterator[Progress | None]:
    """A Rich bar on stderr when stderr is a terminal; None (no reporting) otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.progress import Progress as Bar

    # Lines the work prints go above the bar only if stdout is the same terminal;
    # redirected stdout must keep every line it had.
    with Bar(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        redirect_stdout=sys.stdout.isatty(),
    ) as bar:
        task = bar.add_task(description, total=None)

        def report(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield report
