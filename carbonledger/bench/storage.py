"""What a benchmark run leaves on disk: PostgreSQL's tables with their indexes and
TOAST, and Kafka's partitions (every replica, as the brokers report them), read
before and after the run so that only the run's own growth counts.

PostgreSQL's figure includes what a run deletes but has not yet vacuumed (the
outbox rows the publisher has sent), since that is what the disk holds. The outbox
is a queue, though: once vacuumed its space is reused, so it holds the peak backlog
rather than growing with the books, and the figure is also given without it. Kafka's
counts each topic's log segments, so a topic compacted or deleted meanwhile can
read lower than it wrote.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from carbonledger.contracts.settings import Settings

QUEUES = frozenset({"outbox"})  # emptied as they are published: space reused, not kept
_TABLE_BYTES = """
SELECT c.relname, pg_total_relation_size(c.oid)
FROM pg_class c
WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace
"""


def table_bytes(conn: Any) -> dict[str, int]:
    """Every table of the ledger's schema: bytes of heap, indexes and TOAST."""
    return {str(name): int(size) for name, size in conn.execute(_TABLE_BYTES).fetchall()}


def topic_bytes(settings: Settings) -> dict[str, int]:
    """Bytes of every topic's partitions, summed over the brokers' log directories."""
    from carbonledger.ops.admin import admin_client

    admin = admin_client(settings)
    try:
        answers = admin.describe_log_dirs()
    finally:
        admin.close()
    sizes: Counter[str] = Counter()
    for broker in answers:
        for log_dir in broker["log_dirs"]:
            for topic in log_dir["topics"]:
                sizes[topic["name"]] += sum(p["partition_size"] for p in topic["partitions"])
    return dict(sizes)


def growth(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """How much each grew, largest first (what was not there before grew from 0)."""
    grown = {name: size - before.get(name, 0) for name, size in after.items()}
    return dict(sorted(((n, g) for n, g in grown.items() if g), key=lambda item: -item[1]))


def storage_figures(
    pg: tuple[dict[str, int], dict[str, int]],
    kafka: tuple[dict[str, int], dict[str, int]],
    credited: int,
    records: int,
) -> dict[str, Any]:
    """Bytes per credited activity (PostgreSQL) and per partner record (Kafka), with
    each table's and topic's part."""
    tables, topics_ = growth(*pg), growth(*kafka)
    pg_total, kafka_total = sum(tables.values()), sum(topics_.values())
    kept = sum(b for t, b in tables.items() if t not in QUEUES)
    return {
        "postgres_bytes": pg_total,
        "postgres_bytes_per_credited_activity": round(pg_total / credited) if credited else 0,
        "postgres_kept_bytes_per_credited_activity": round(kept / credited) if credited else 0,
        "postgres_tables": tables,
        "kafka_bytes": kafka_total,
        "kafka_bytes_per_record": round(kafka_total / records) if records else 0,
        "kafka_topics": topics_,
    }
