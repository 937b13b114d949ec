"""Who may do what on the broker: the Kafka principals and their ACLs, declared once.

Every client authenticates with SASL/SCRAM as one principal. Partners may only
write their own topic; each service may read its inputs, write its outputs, use
its own consumer group and its own internal (faust) topics, and nothing else.
The super user `admin` is for the operator's tools (topics, users, ACLs,
dead-letter replay, recompute). `carbonledger kafka-access` applies this map.

Secrets never live in files: principal NAME reads CARBON_KAFKA_SECRET_<NAME>
(upper case, `-` and `.` as `_`). Outside production a documented development
secret `<name>-dev-only` stands in; in production a missing secret is an error,
and so is a weak one (`weak_secret`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from carbonledger.contracts import services, topics

ADMIN = "admin"
DEV_SECRET_SUFFIX = "-dev-only"
DEV_SIGNING_SUFFIX = "-dev-secret"  # partners' HTTP signing secrets (contracts/partners.py)
PARTNER_PREFIX = "partner-"
SERVICE_PREFIX = "svc-"
SUBSCRIBER_PREFIX = "incentive-"

# Production secrets and passwords: at least this long, and none of the values this
# repository ships (they are public). docs/configuration.md says the same.
SECRET_ENV_PREFIX = "CARBON_KAFKA_SECRET_"
MIN_SECRET_LENGTH = 16
SHIPPED_EXAMPLE_SECRETS = frozenset(
    {"carbon", "change-me", "changeme", "placeholder-change-me", "password", "secret", "admin"}
)


class Resource(StrEnum):
    TOPIC = "topic"
    GROUP = "group"


class Operation(StrEnum):
    READ = "read"
    WRITE = "write"
    CREATE = "create"
    DESCRIBE = "describe"


@dataclass(frozen=True)
class Grant:
    """Operations allowed on one resource name, or on every name with a prefix."""

    resource: Resource
    name: str
    operations: tuple[Operation, ...]
    prefixed: bool = False


@dataclass(frozen=True)
class Principal:
    name: str
    grants: tuple[Grant, ...]


class MissingSecret(ValueError):
    """A principal's secret is not in the environment where no default is allowed."""


class WeakSecret(ValueError):
    """A secret production refuses: a development or example value, or too short."""


def weak_secret(value: str) -> str | None:
    """Why `value` may not guard anything in production, or None if it may."""
    folded = value.strip().lower()
    if folded.endswith((DEV_SECRET_SUFFIX, DEV_SIGNING_SUFFIX)):
        return "a development secret"
    if folded in SHIPPED_EXAMPLE_SECRETS:
        return "an example value shipped with the project"
    if len(value) < MIN_SECRET_LENGTH:
        return f"shorter than {MIN_SECRET_LENGTH} characters"
    return None


def refuse_weak(name: str, value: str) -> str:
    """`value`, unless it is weak: then WeakSecret naming the variable (not the value)."""
    why = weak_secret(value)
    if why:
        raise WeakSecret(f"{name} is {why}; production needs a secret of its own")
    return value


def secret_env(name: str) -> str:
    return SECRET_ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def secret_of(name: str, environ: Mapping[str, str], production: bool) -> str:
    value = environ.get(secret_env(name))
    if value:
        return refuse_weak(secret_env(name), value) if production else value
    if production:
        raise MissingSecret(f"{secret_env(name)} must be set in production")
    return f"{name}{DEV_SECRET_SUFFIX}"


def partner_principal_name(partner_id: str) -> str:
    return f"{PARTNER_PREFIX}{partner_id}"


def service_principal_name(service: str) -> str:
    return f"{SERVICE_PREFIX}{service}"


def _reads(topic: str, prefixed: bool = False) -> Grant:
    return Grant(Resource.TOPIC, topic, (Operation.READ, Operation.DESCRIBE), prefixed)


def _writes(topic: str, prefixed: bool = False) -> Grant:
    return Grant(Resource.TOPIC, topic, (Operation.WRITE, Operation.DESCRIBE), prefixed)


def _group(group: str) -> Grant:
    return Grant(Resource.GROUP, group, (Operation.READ, Operation.DESCRIBE))


def _faust_internal(app_id: str) -> Grant:
    """A faust app's own topics (table changelogs), which it declares at start."""
    everything = (Operation.CREATE, Operation.READ, Operation.WRITE, Operation.DESCRIBE)
    return Grant(Resource.TOPIC, f"{app_id}-", everything, prefixed=True)


def _stream_stage(
    app_id: str, inputs: Iterable[Grant], outputs: Iterable[str]
) -> tuple[Grant, ...]:
    return (
        *inputs,
        *(_writes(t) for t in outputs),
        _writes(topics.REJECTED),
        _group(app_id),
        _faust_internal(app_id),
    )


def partner_principal(partner_id: str) -> Principal:
    return Principal(
        partner_principal_name(partner_id), (_writes(topics.partner_topic(partner_id)),)
    )


def service_principals(ledger_group: str) -> tuple[Principal, ...]:
    """The services' principals. Names match `carbonledger.contracts.services.SERVICES`."""
    partner_topics = topics.PARTNER_TOPIC_PREFIX
    return (
        Principal(
            service_principal_name(services.INGEST.name),
            _stream_stage(
                topics.INGEST_APP_ID, [_reads(partner_topics, prefixed=True)], [topics.VALIDATED]
            ),
        ),
        Principal(
            service_principal_name(services.GATEWAY.name), (_writes(partner_topics, prefixed=True),)
        ),
        Principal(
            service_principal_name(services.QUANTIFY.name),
            _stream_stage(topics.QUANTIFY_APP_ID, [_reads(topics.VALIDATED)], [topics.CLAIMS]),
        ),
        Principal(
            service_principal_name(services.DEDUPE.name),
            # It writes reduction.claims too: a claim under another key than its
            # dedupe group's is sent on under the right one (dedupe entrypoints).
            _stream_stage(
                topics.DEDUPE_APP_ID,
                [_reads(topics.CLAIMS)],
                [topics.DECISIONS, topics.ENGAGEMENT, topics.ACCOUNTS, topics.CLAIMS],
            ),
        ),
        Principal(
            service_principal_name(services.LEDGER_WRITER.name),
            (
                _reads(topics.DECISIONS),
                _reads(topics.ACCOUNTS),
                # Partners' dead letters, recorded for each to read its own.
                _reads(topics.REJECTED),
                _writes(topics.REJECTED),
                _group(ledger_group),
            ),
        ),
        Principal(
            service_principal_name(services.LEDGER_PUBLISHER.name),
            (_writes(topics.POSTINGS), _writes(topics.REGISTRY)),
        ),
    )


def subscriber_principal(name: str) -> Principal:
    """An incentive system reading ledger.postings, engagement.events, account.events and
    registry.events in its own groups (`<name>`, `<name>-*`)."""
    return Principal(
        f"{SUBSCRIBER_PREFIX}{name}",
        (
            _reads(topics.POSTINGS),
            _reads(topics.ENGAGEMENT),
            _reads(topics.ACCOUNTS),
            _reads(topics.REGISTRY),
            Grant(Resource.GROUP, name, (Operation.READ, Operation.DESCRIBE), prefixed=True),
        ),
    )


# The example points engine (examples/points_subscriber.py) ships with a principal.
SUBSCRIBERS = ("points",)


def principals(partner_ids: Iterable[str], ledger_group: str) -> tuple[Principal, ...]:
    return (
        *service_principals(ledger_group),
        *(partner_principal(p) for p in partner_ids),
        *(subscriber_principal(s) for s in SUBSCRIBERS),
    )
