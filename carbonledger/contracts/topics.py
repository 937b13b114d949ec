"""The topic map: every topic the system uses, with its settings, in one place.

`carbonledger topics create` (and `up`) creates them from this map; nothing relies
on broker-side auto-creation. Pipeline topics are keyed by subject so that every
record about one person meets in one partition of every stage; claims are keyed
by their dedupe group (the subject, or a global natural key: contracts/groups.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from carbonledger.contracts import services

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int
    key: str
    value: str
    producers: str
    consumers: str
    cleanup_policy: str = "delete"
    extra_config: dict[str, str] = field(default_factory=dict)

    def config(self) -> dict[str, str]:
        cfg = {"cleanup.policy": self.cleanup_policy, "retention.ms": str(self.retention_ms)}
        cfg.update(self.extra_config)
        return cfg


PARTNER_TOPIC_PREFIX = "partner."
PARTNER_TOPIC_SUFFIX = ".events"
PARTNER_TOPIC_PATTERN = r"^partner\.[a-z0-9][a-z0-9-]*\.events$"
PARTNER_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"

VALIDATED = "behaviour.validated"
REJECTED = "behaviour.rejected"
CLAIMS = "reduction.claims"
DECISIONS = "dedupe.decisions"
POSTINGS = "ledger.postings"
ENGAGEMENT = "engagement.events"
ACCOUNTS = "account.events"
REGISTRY = "registry.events"

# The stream stages' faust app ids: their consumer groups and internal-topic prefixes.
INGEST_APP_ID = services.INGEST.app_id
QUANTIFY_APP_ID = services.QUANTIFY.app_id
DEDUPE_APP_ID = services.DEDUPE.app_id
LEDGER_PUBLISHER_APP_ID = services.LEDGER_PUBLISHER.app_id
DEDUPE_TABLE = "claims-by-person"
DEDUPE_CHANGELOG = f"{DEDUPE_APP_ID}-{DEDUPE_TABLE}-changelog"

# A partner record may be up to 10 MiB (ingest dead-letters anything over its own
# validation limit); its dead letter holds it base64-encoded, hence the larger limit.
PARTNER_MAX_BYTES = 10 * 1024 * 1024 + 65536
REJECTED_MAX_BYTES = 16 * 1024 * 1024

PIPELINE_PARTITIONS = 8
PARTNER_PARTITIONS = 4


def partner_topic(partner_id: str) -> str:
    return f"{PARTNER_TOPIC_PREFIX}{partner_id}{PARTNER_TOPIC_SUFFIX}"


def partner_of_topic(topic: str) -> str | None:
    """The partner a topic belongs to, or None for a topic outside the partner space."""
    if not re.match(PARTNER_TOPIC_PATTERN, topic):
        return None
    return topic[len(PARTNER_TOPIC_PREFIX) : -len(PARTNER_TOPIC_SUFFIX)]


def partner_topic_spec(partner_id: str, partitions: int = PARTNER_PARTITIONS) -> TopicSpec:
    return TopicSpec(
        name=partner_topic(partner_id),
        partitions=partitions,
        retention_ms=7 * DAY_MS,
        key="subject (recommended) or none",
        value="CloudEvents 1.0 structured JSON (docs/partners.md)",
        producers=f"partner {partner_id}",
        consumers="ingest",
        extra_config={"max.message.bytes": str(PARTNER_MAX_BYTES)},
    )


def pipeline_topics(partitions: int = PIPELINE_PARTITIONS) -> list[TopicSpec]:
    """The system's own topics; `partitions` bounds how many workers a stage can use."""
    return [
        TopicSpec(
            VALIDATED,
            partitions,
            14 * DAY_MS,
            "subject",
            "ValidatedBehaviour v1",
            "ingest",
            "quantify",
        ),
        TopicSpec(
            REJECTED,
            partitions,
            30 * DAY_MS,
            "partner id",
            "DeadLetter v1",
            "ingest, every stage",
            "operators (carbonledger dlq)",
            extra_config={"max.message.bytes": str(REJECTED_MAX_BYTES)},
        ),
        TopicSpec(
            CLAIMS,
            partitions,
            14 * DAY_MS,
            "dedupe group (subject, or ~global/<class>/<natural key>)",
            "ReductionClaim v1",
            "quantify (dedupe re-keys a stray)",
            "dedupe",
        ),
        TopicSpec(
            DECISIONS, partitions, 30 * DAY_MS, "subject", "Decision v1", "dedupe", "ledger writer"
        ),
        TopicSpec(
            POSTINGS,
            partitions,
            30 * DAY_MS,
            "book:account",
            "LedgerPosting v1",
            "ledger writer",
            "incentive systems",
        ),
        TopicSpec(
            ENGAGEMENT,
            partitions,
            30 * DAY_MS,
            "subject",
            "Engagement v1",
            "dedupe",
            "incentive systems",
        ),
        TopicSpec(
            ACCOUNTS,
            partitions,
            30 * DAY_MS,
            "subject",
            "AccountEvent v1",
            "dedupe",
            "ledger writer (consent history, family links), incentive systems",
        ),
        TopicSpec(
            REGISTRY,
            partitions,
            -1,  # the registry's public history: kept, like the books it mirrors
            "registry (transactions, in chain order) or the contributor's account",
            "RegistryTransaction v1, ProceedsAllocation v1",
            "ledger publisher",
            "incentive systems (proceeds), registry mirrors",
        ),
        # Dedupe's state log (runtime/changelog.py, services/dedupe/adapters/state.py):
        # compacted, kept forever; its name and format are those of the faust table it
        # replaced.
        TopicSpec(
            DEDUPE_CHANGELOG,
            partitions,
            -1,
            "subject",
            "dedupe person state",
            "dedupe (state changes)",
            "dedupe (recovery)",
            cleanup_policy="compact",
            extra_config={"min.compaction.lag.ms": "60000"},
        ),
    ]
