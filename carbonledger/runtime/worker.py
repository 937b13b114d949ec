"""Running a stage's faust app as its process: `python -m <entrypoint>` bootstraps
the stage, then hands the command line to faust's own CLI."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NoReturn

import faust

WORKER = ("worker", "-l", "info")


def run_worker(app: faust.App, argv: Sequence[str] | None = None) -> NoReturn:
    """faust's CLI for `app`, with `argv` (default: the process's, else `worker -l info`)."""
    args = list(argv if argv is not None else sys.argv[1:]) or list(WORKER)
    sys.argv = [sys.argv[0], *args]  # faust's CLI (click) reads the process's argv
    app.main()
