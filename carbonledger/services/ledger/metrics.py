"""The ledger's metrics, writer's and publisher's (declared here so that importing
them registers the families and builds nothing else)."""

from __future__ import annotations

from carbonledger.contracts import metrics

BATCHES = metrics.histogram(
    "ledger",
    "write_batch_decisions",
    "Decisions per ledger write batch",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
)
APPLIED = metrics.counter(
    "ledger", "decisions_total", "Decisions recorded (redeliveries not counted), by kind", ("kind",)
)
POSTINGS = metrics.counter(
    "ledger", "postings_total", "Postings made (three per credit or reversal)"
)
ACCOUNT_EVENTS = metrics.counter(
    "ledger",
    "account_events_total",
    "Account events recorded (consent history, family reports; redeliveries not counted), by type",
    ("behaviour_type",),
)
WRITE_SECONDS = metrics.histogram("ledger", "write_seconds", "Time to apply one batch")
CREDITED = metrics.counter(
    "ledger",
    "credited_reduction_grams_total",
    "Reduction credited to the books, by behaviour type and province",
    ("behaviour_type", "province"),
)
REVERSED = metrics.counter(
    "ledger",
    "reversed_reduction_grams_total",
    "Reduction taken back by reversals, by behaviour type and province",
    ("behaviour_type", "province"),
)
INGEST_TO_POSTING = metrics.histogram(
    "ledger",
    "ingest_to_posting_seconds",
    "From ingest admitting an event to its first credit being committed (the pipeline's latency)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300, 1800),
)
EVENT_TO_POSTING = metrics.histogram(
    "ledger",
    "event_to_posting_seconds",
    "From the event's time (set by the partner) to its first credit being committed",
    buckets=(1, 5, 30, 60, 300, 900, 3600, 14400, 86400, 259200, 604800, 2592000),
)

PUBLISHED = metrics.counter("publisher", "postings_total", "Postings published on ledger.postings")
BACKLOG = metrics.gauge("publisher", "outbox_postings", "Postings in the outbox, not yet published")
ACTIVE = metrics.gauge("publisher", "active", "1 while this process is the active publisher")
BATCH_SECONDS = metrics.histogram("publisher", "batch_seconds", "Time to publish one outbox batch")
BOOK_BALANCE = metrics.gauge(
    "ledger",
    "book_balance_grams",
    "Total balance of each book, read in one snapshot by the active publisher",
    ("book",),
)
PERSONAL_BALANCE = metrics.gauge(
    "ledger",
    "personal_balance_grams",
    "The personal book's total by whose accounts: kind person or unit (they sum to the book)",
    ("kind",),
)

REGISTRY_SHORTFALL = metrics.gauge(
    "registry",
    "uncovered_shortfall_grams",
    "Issued units no longer backed by the books (reversals after issuance) and not yet "
    "deducted from a later issuance of their (region, methodology), read by the active publisher",
)
REGISTRY_SHORTFALL_SERIES = metrics.gauge(
    "registry", "shortfall_series", "(region, methodology) series with an uncovered shortfall"
)

API_REQUESTS = metrics.counter(
    "api", "requests_total", "Ledger API requests, by route template", ("route", "method", "status")
)
API_REQUEST_SECONDS = metrics.histogram(
    "api", "request_seconds", "Time to answer one ledger API request", ("route",)
)
