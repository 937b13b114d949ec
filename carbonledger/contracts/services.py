"""The platform's processes, declared once: what each runs, on which port, in which
consumer group, and whether it connects to Kafka (as its own principal svc-<name>,
carbonledger/contracts/access.py).

`carbonledger up` starts them from this table (carbonledger/ops/stack.py); the
settings' port and group defaults, the topics' app ids and the lag probe read it.
Operators still override the ports and the writer's group with the environment
variables of docs/configuration.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Service:
    """One kind of service process; `worker` numbers processes of one consumer group."""

    name: str
    # "python": python -m module (the stream stages run faust inside); "uvicorn": module:app.
    module: str
    kind: Literal["python", "uvicorn"]
    # Worker 0's HTTP port (/metrics, /healthz, /readyz); worker n listens on base_port + n.
    base_port: int
    # The consumer group, which for a faust process is also its app id (the prefix of
    # its internal topics). None for a process that consumes nothing.
    group: str | None = None
    kafka: bool = True  # connects to Kafka, as its own principal svc-<name>

    @property
    def app_id(self) -> str:
        if self.group is None:
            raise ValueError(f"{self.name} has no consumer group")
        return self.group


INGEST = Service(
    "ingest", "carbonledger.services.ingest.entrypoints.app", "python", 6070, "carbon-ingest"
)
GATEWAY = Service(
    "gateway", "carbonledger.services.ingest.entrypoints.gateway:app", "uvicorn", 6075
)
QUANTIFY = Service(
    "quantify", "carbonledger.services.quantify.entrypoints.app", "python", 6080, "carbon-quantify"
)
DEDUPE = Service(
    "dedupe", "carbonledger.services.dedupe.entrypoints.app", "python", 6090, "carbon-dedupe"
)
# The writer's offsets live in PostgreSQL, committed with its postings, under this group.
LEDGER_WRITER = Service(
    "ledger-writer",
    "carbonledger.services.ledger.entrypoints.writer",
    "python",
    6100,
    "carbon-ledger-writer",
)
# A faust app that consumes nothing: the id names its app and datadir only.
LEDGER_PUBLISHER = Service(
    "ledger-publisher",
    "carbonledger.services.ledger.entrypoints.publisher",
    "python",
    6105,
    "carbon-ledger-publisher",
)
LEDGER_API = Service(
    "ledger-api", "carbonledger.services.ledger.entrypoints.api:app", "uvicorn", 8000, kafka=False
)

SERVICES = {
    s.name: s
    for s in (INGEST, GATEWAY, QUANTIFY, DEDUPE, LEDGER_WRITER, LEDGER_PUBLISHER, LEDGER_API)
}
