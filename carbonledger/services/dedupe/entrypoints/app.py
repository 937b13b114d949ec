"""Dedupe worker: reduction.claims -> dedupe.decisions (and engagement.events,
account.events), with
state per dedupe group (a person, or a global natural key).

Run: python -m carbonledger.services.dedupe.entrypoints.app (a faust worker; any
arguments go to faust's CLI, `worker -l info` without). Importing it builds nothing.

The Dedupe use case (service.py) decides; this wires it to the stream. Claims are
read in batches (runtime/batching.py) and the state is a changelog-backed mapping
per claims partition (runtime/changelog.py, keys and encoding in adapters/state.py)
rather than a faust table: faust's per-event path was most of dedupe's CPU
(docs/performance.md). Each batch is one state transaction: its decisions and state
changes are acknowledged by the broker before its offsets are committed; after a
crash the re-read claims are replays, and a replay re-emits the decisions its first
arrival caused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import faust

from carbonledger.contracts import topics
from carbonledger.contracts.groups import dedupe_group
from carbonledger.contracts.records import ReductionClaim
from carbonledger.runtime.batching import Output
from carbonledger.runtime.changelog import ChangelogTable
from carbonledger.runtime.process import run_worker
from carbonledger.runtime.stage import Stage, make_app
from carbonledger.services.dedupe.adapters.state import ChangelogState
from carbonledger.services.dedupe.config import DedupeSettings
from carbonledger.services.dedupe.metrics import DedupeMetrics
from carbonledger.services.dedupe.service import Dedupe


def decisions_of(dedupe: Dedupe) -> Callable[[Any, ReductionClaim], Iterator[Output]]:
    def decide(record: Any, claim: ReductionClaim) -> Iterator[Output]:
        """A claim's decisions (claims are taken in the order they arrived per partition),
        each keyed by the subject of the claim it is about: in a global group one claim
        can displace another person's credit, whose reversal follows that credit in its
        person's partition of dedupe.decisions. An engagement event's record instead.

        A claim keyed other than by its dedupe group (one published before its type's
        key became global, or redriven from a dead letter with its old key) would
        open a second state for its group in the wrong partition: it is sent on
        again under its group's key, in this batch's transaction, and observed there."""
        group = dedupe_group(claim).encode()
        if record.key != group:
            dedupe.tally.claim("rerouted")
            yield Output(topics.CLAIMS, group, claim.to_bytes())
            return
        observed = dedupe.observe(record.partition, claim)
        for decision in observed.decisions:
            yield Output(topics.DECISIONS, decision.claim.subject.encode(), decision.to_bytes())
        for engagement in observed.engagements:
            yield Output(topics.ENGAGEMENT, engagement.subject.encode(), engagement.to_bytes())
        for account in observed.accounts:
            yield Output(topics.ACCOUNTS, account.subject.encode(), account.to_bytes())

    return decide


def bootstrap(settings: DedupeSettings) -> faust.App:
    """The stage's faust app, reading reduction.claims in batches over its state."""
    app = make_app(topics.DEDUPE_APP_ID, settings.dedupe_web_port, settings)
    stage = Stage("dedupe", app, settings)
    people = ChangelogTable(topics.DEDUPE_CHANGELOG, settings)
    dedupe = Dedupe(ChangelogState(people), settings.dedupe_window, DedupeMetrics())
    stage.batches((topics.CLAIMS,), stage.each(ReductionClaim, decisions_of(dedupe)), state=people)
    return app


def main() -> None:
    run_worker(bootstrap(DedupeSettings()))


if __name__ == "__main__":
    main()
