"""The chaos suite against the test stack: every hostile input and internal poison of the
tables (sent in one go, judged one test per input), no stage restarted by any of them,
and one short fault run (the long ones are `carbonledger chaos faults`)."""

from __future__ import annotations

import random
from datetime import datetime

import psycopg
import pytest

from carbonledger.bench.chaos import attack, faults, hostile, poison
from carbonledger.bench.chaos.verdict import ALONE, WITH_CONTROL, Verdict
from carbonledger.contracts.calendar import CST
from carbonledger.contracts.settings import Settings
from carbonledger.ops import stack
from tests.integration.helpers import books_balanced

pytestmark = pytest.mark.integration
# Inside the other tests' week (dedupe's window holds it): the controls are credited.
AT = datetime(2026, 10, 15, 12, 0, tzinfo=CST)
INPUTS = [
    *(
        (case.name, channel, phase)
        for case in hostile.HOSTILE
        for channel in case.channels
        for phase in (ALONE, WITH_CONTROL)
    ),
    *((case.name, case.topic, ALONE) for case in poison.POISON),
]


@pytest.fixture(scope="module")
def chaos_report(settings: Settings, running_stack: stack.Processes) -> attack.Report:
    return attack.run_tables(settings, at=AT, timeout=240)


@pytest.mark.parametrize(("case", "channel", "phase"), INPUTS, ids=["/".join(i) for i in INPUTS])
def test_hostile_input_is_refused_and_its_control_credited(
    chaos_report: attack.Report, case: str, channel: str, phase: str
) -> None:
    found: dict[tuple[str, str, str], Verdict] = {
        (v.case, v.channel, v.phase): v for v in chaos_report.verdicts
    }
    verdict = found[case, channel, phase]
    assert verdict.ok, f"{verdict.outcome}: {'; '.join(verdict.problems)}"


def test_no_stage_restarted_under_the_hostile_tables(chaos_report: attack.Report) -> None:
    assert chaos_report.restarted == []


@pytest.mark.todays_traffic  # the bench's city traffic happens now
def test_a_stage_killed_under_load_loses_nothing_and_doubles_nothing(
    settings: Settings, db: psycopg.Connection, running_stack: stack.Processes
) -> None:
    options = faults.FaultOptions(activities=1_000, rate=300, people=300, timeout=300)
    run = faults.fault_run(settings, "sigkill:dedupe", options, random.Random(18))
    assert run.ok, faults.table([run])
    assert run.faults == 1 and run.events > 500 and run.records >= run.events
    assert books_balanced(db)
