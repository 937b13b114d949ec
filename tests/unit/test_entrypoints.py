"""The stream stages' entrypoints build nothing when imported: their settings,
registries and faust apps are made by `main()`, once per process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from carbonledger.contracts.services import SERVICES
from carbonledger.contracts.settings import ROOT
from carbonledger.ops import stack

STAGES = ("ingest", "quantify", "dedupe")

IMPORT_ONLY = """
import importlib, sys
import faust

def refuse(*args, **kwargs):
    raise AssertionError("a faust app was built at import")

faust.App.__init__ = refuse
module = importlib.import_module(sys.argv[1])
assert callable(module.main)
"""


@pytest.mark.parametrize("stage", STAGES)
def test_importing_a_stage_builds_no_app_and_reads_no_files(stage: str) -> None:
    module = f"carbonledger.services.{stage}.entrypoints.app"
    missing = {"CARBON_PARTNERS_FILE": "/nonexistent/partners.yaml"}
    missing["CARBON_METHODOLOGY_DIR"] = "/nonexistent/registry"
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ONLY, module],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **missing},
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("stage", STAGES)
def test_the_stack_runs_each_stage_as_its_module(stage: str) -> None:
    program = stack.program(SERVICES[stage], 6000)
    assert program[1:] == ["-m", f"carbonledger.services.{stage}.entrypoints.app"]
