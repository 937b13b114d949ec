"""Quantify worker: behaviour.validated -> reduction.claims.

Run: python -m carbonledger.services.quantify.entrypoints.app (a faust worker; any
arguments go to faust's CLI, `worker -l info` without). Importing it builds nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import faust

from carbonledger.contracts import topics
from carbonledger.contracts.groups import dedupe_group
from carbonledger.contracts.methodology import Methodology
from carbonledger.contracts.methodology_files import load_methodologies
from carbonledger.contracts.records import ValidatedBehaviour
from carbonledger.runtime.batching import Output
from carbonledger.runtime.process import run_worker
from carbonledger.runtime.stage import Stage, make_app
from carbonledger.services.quantify.config import QuantifySettings
from carbonledger.services.quantify.domain.methodology import Selection
from carbonledger.services.quantify.service import check_consumed, quantify_behaviour


def claims_of(
    methodologies: Sequence[Methodology],
) -> Callable[[Any, ValidatedBehaviour], Iterator[Output]]:
    # One Selection for the stage's life: it remembers what each key selected.
    registry = Selection(methodologies)

    def claim_of(record: Any, behaviour: ValidatedBehaviour) -> Iterator[Output]:
        """A validated behaviour's reduction claim (a `data` its catalogue type refuses
        is an invalid_record, dead-lettered by the stage kit), keyed by its dedupe group:
        a global key's claims meet in one dedupe partition whoever reported them."""
        claim = quantify_behaviour(check_consumed(behaviour), registry)
        yield Output(topics.CLAIMS, dedupe_group(claim).encode(), claim.to_bytes())

    return claim_of


def bootstrap(settings: QuantifySettings) -> faust.App:
    """The stage's faust app, reading behaviour.validated in batches."""
    methodologies = load_methodologies(settings.methodology_dir)
    app = make_app(topics.QUANTIFY_APP_ID, settings.quantify_web_port, settings)
    stage = Stage("quantify", app, settings)
    stage.batches((topics.VALIDATED,), stage.each(ValidatedBehaviour, claims_of(methodologies)))
    return app


def main() -> None:
    run_worker(bootstrap(QuantifySettings()))


if __name__ == "__main__":
    main()
