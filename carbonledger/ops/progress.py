"""How far each consumer group has read: the lag of every stage of the pipeline."""

from __future__ import annotations

from types import TracebackType

from kafka import KafkaConsumer, TopicPartition

from carbonledger.contracts import services, topics
from carbonledger.contracts.settings import Settings
from carbonledger.ops.admin import admin_client, committed_offsets

LEDGER_GROUP = services.LEDGER_WRITER.app_id
LEDGER_TOPICS = (topics.DECISIONS, topics.ACCOUNTS)  # what the ledger writer reads
STAGE_GROUPS = {
    topics.INGEST_APP_ID: None,  # every partner topic
    topics.QUANTIFY_APP_ID: topics.VALIDATED,
    topics.DEDUPE_APP_ID: topics.CLAIMS,
}


class LagProbe:
    """One admin client and one metadata consumer, reused across lag readings."""

    def __init__(self, settings: Settings) -> None:
        self.admin = admin_client(settings)
        self.consumer = KafkaConsumer(**settings.plain_client_config(), enable_auto_commit=False)

    def __enter__(self) -> LagProbe:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.consumer.close()
        self.admin.close()

    def end_offsets(self, names: list[str]) -> dict[TopicPartition, int]:
        tps = [
            TopicPartition(t, p)
            for t in names
            for p in sorted(self.consumer.partitions_for_topic(t) or ())
        ]
        return dict(self.consumer.end_offsets(tps)) if tps else {}

    def committed(self, group: str) -> dict[TopicPartition, int]:
        return committed_offsets(self.admin, group)

    def lag(self, names: list[str], committed: dict[TopicPartition, int]) -> int:
        """Records in `names` past the committed offsets (an uncommitted partition counts whole)."""
        return sum(
            max(0, end - committed.get(tp, 0)) for tp, end in self.end_offsets(names).items()
        )

    def pipeline(self, ledger_offsets: dict[str, dict[int, int]]) -> dict[str, int]:
        """Lag of every stage; the ledger writer's offsets (of each topic it reads:
        decisions and account events) come from its own table."""
        partner_topics = sorted(t for t in self.admin.list_topics() if topics.partner_of_topic(t))
        lag = {
            group: self.lag([topic] if topic else partner_topics, self.committed(group))
            for group, topic in STAGE_GROUPS.items()
        }
        ledger = {
            TopicPartition(topic, p): o
            for topic in LEDGER_TOPICS
            for p, o in ledger_offsets.get(topic, {}).items()
        }
        lag[LEDGER_GROUP] = self.lag(list(LEDGER_TOPICS), ledger)
        return lag
