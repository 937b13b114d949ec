"""The partner contract as documents, generated from the code that enforces it.

JSON Schema (2020-12) for every behaviour type, from the catalogue; an AsyncAPI 3
document of the topics, from the topic map and the record models. `carbonledger
schemas` writes them under docs/contract/, and a test fails when the committed
files differ from what the code would generate.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from carbonledger import __version__
from carbonledger.contracts import topics
from carbonledger.contracts.bounds import DECIMAL_TEXT_PATTERN, MAX_TEXT_LENGTH
from carbonledger.contracts.catalogue import CATALOGUE, REGION_FIELD, BehaviourType, FieldSpec, Kind
from carbonledger.contracts.envelope import SUBJECT_KIND_ATTRIBUTE, SUBJECT_PATTERN
from carbonledger.contracts.records import (
    AccountEvent,
    DeadLetter,
    Decision,
    Engagement,
    LedgerPosting,
    ReductionClaim,
    SubjectKind,
    ValidatedBehaviour,
)
from carbonledger.contracts.registry import ProceedsAllocation, RegistryTransaction

_DECIMAL_TEXT = f"^{DECIMAL_TEXT_PATTERN}$"  # what ingest accepts, to the character


def _number(value: Decimal) -> int | float | str:
    return int(value) if value == value.to_integral_value() else str(value)


def _bounds(spec: FieldSpec) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if spec.minimum is not None:
        key = "exclusiveMinimum" if spec.exclusive_minimum else "minimum"
        found[key] = _number(spec.minimum)
    if spec.maximum is not None:
        found["maximum"] = _number(spec.maximum)
    return found


def field_schema(spec: FieldSpec) -> dict[str, Any]:
    bounds = _bounds(spec)
    schema: dict[str, Any] = {
        Kind.DECIMAL: {
            "oneOf": [
                {"type": "number", **bounds},
                {
                    "type": "string",
                    "pattern": _DECIMAL_TEXT,
                    "description": "decimal text; its bounds are checked at ingest",
                },
            ]
        },
        Kind.INTEGER: {"type": "integer", **bounds},
        Kind.TEXT: {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_LENGTH},
        Kind.BOOLEAN: {"type": "boolean"},
        Kind.DATETIME: {"type": "string", "format": "date-time"},
        Kind.DATE: {"type": "string", "format": "date"},
        Kind.CHOICE: {"type": "string", "enum": list(spec.choices)},
    }[spec.kind]
    if spec is REGION_FIELD:
        schema["pattern"] = r"^[0-9]{6}$"
    notes = [spec.description] if spec.description else []
    if spec.unit:
        schema["x-unit"] = spec.unit
        notes.append(f"unit: {spec.unit}")
    if spec.default is not None:
        schema["default"] = spec.default
    if notes:
        schema["description"] = "; ".join(notes)
    return schema


def behaviour_schema(spec: BehaviourType) -> dict[str, Any]:
    """The JSON Schema of a whole partner event of one type (envelope and data)."""
    fields = (REGION_FIELD, *spec.fields)
    data: dict[str, Any] = {
        "type": "object",
        "properties": {f.name: field_schema(f) for f in fields},
        "required": [f.name for f in fields if f.required],
        "additionalProperties": False,
    }
    if spec.one_of:
        data["anyOf"] = [{"required": [name]} for name in spec.one_of]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://carbonledger.example/contract/behaviours/{spec.type}.schema.json",
        "title": f"{spec.type}: {spec.title}",
        "description": f"Category `{spec.category.value}`; activity class `{spec.activity_class}`"
        + (f"; natural key: {' + '.join(spec.natural_key)}" if spec.natural_key else "")
        + ("; the key is global: one activity whoever reports it" if spec.global_key else "")
        + (f"; lasts at most {spec.max_duration}" if spec.max_duration else ""),
        "type": "object",
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "minLength": 1, "maxLength": 256},
            "source": {"type": "string", "pattern": topics.PARTNER_ID_PATTERN},
            "type": {"const": spec.type},
            "time": {"type": "string", "format": "date-time"},
            "subject": {"type": "string", "pattern": SUBJECT_PATTERN.pattern},
            "datacontenttype": {"const": "application/json"},
            SUBJECT_KIND_ATTRIBUTE: {
                "enum": [*(k.value for k in SubjectKind), None],
                "default": SubjectKind.PERSON.value,
                "description": "CloudEvents extension: whose behaviour it is, a person's or a "
                "unit's (an organisation; its subject is the HMAC of its unified social credit "
                "code); null means absent; another value is refused as invalid_envelope",
            },
            "data": data,
        },
        "required": ["specversion", "id", "source", "type", "time", "subject", "data"],
        "additionalProperties": False,
    }


def behaviour_schemas() -> dict[str, dict[str, Any]]:
    return {t: behaviour_schema(spec) for t, spec in sorted(CATALOGUE.items())}


def _internal(name: str, model: type[Any], summary: str) -> dict[str, Any]:
    return {
        "address": name,
        "description": summary,
        "messages": {"record": {"payload": model.model_json_schema(mode="serialization")}},
    }


def asyncapi() -> dict[str, Any]:
    """AsyncAPI 3.0 of the partner topics and the pipeline topics behind them."""
    partner_messages = {
        t.replace(".", "_"): {
            "name": t,
            "contentType": "application/json",
            "payload": {"$ref": f"behaviours/{t}.schema.json"},
        }
        for t in sorted(CATALOGUE)
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Carbon inclusion ledger: event contract",
            "version": __version__,
            "description": "Partners publish CloudEvents 1.0 (structured JSON, UTF-8) to their own "
            "topic; see docs/partners.md. Internal topics are listed for operators.",
        },
        "servers": {
            "local": {"host": "127.0.0.1:19092", "protocol": "kafka", "description": "make demo"}
        },
        "channels": {
            "partnerEvents": {
                "address": "partner.{partnerId}.events",
                "description": f"One topic per registered partner, {topics.PARTNER_PARTITIONS} "
                "partitions; key by subject so one person's events keep their order. Records up "
                f"to {topics.PARTNER_MAX_BYTES} bytes at the broker. The extension attribute "
                "`subjectkind` (person, the default, or unit) says whose behaviour it is.",
                "parameters": {"partnerId": {"description": "the partner id in the registry"}},
                "messages": partner_messages,
            },
            "validated": _internal(
                topics.VALIDATED, ValidatedBehaviour, "ingest → quantify, keyed by subject"
            ),
            "rejected": _internal(
                topics.REJECTED, DeadLetter, "dead letters: original bytes, origin, reason"
            ),
            "claims": _internal(
                topics.CLAIMS,
                ReductionClaim,
                "quantify → dedupe, keyed by dedupe group: the subject, or a global natural "
                "key's group (~global/<class>/<key>) for types credited once whoever reports",
            ),
            "decisions": _internal(
                topics.DECISIONS, Decision, "dedupe → ledger writer: credit, reverse, duplicate"
            ),
            "postings": _internal(
                topics.POSTINGS,
                LedgerPosting,
                "ledger → incentive systems, keyed by book:account; at least once, idempotent "
                "by posting_id, with running balance and hash-chain link",
            ),
            "engagement": _internal(
                topics.ENGAGEMENT,
                Engagement,
                "dedupe → incentive systems: engagement events (engage.*), never in the books; "
                "keyed by subject, at least once, idempotent by engagement_id",
            ),
            "accounts": _internal(
                topics.ACCOUNTS,
                AccountEvent,
                "dedupe → ledger writer and incentive systems: consent granted or withdrawn, "
                "family links (consent.*, family.*), never in the books; keyed by subject, at "
                "least once, idempotent by account_event_id",
            ),
            "registry": {
                "address": topics.REGISTRY,
                "description": "ledger publisher → incentive systems and registry mirrors: every "
                "registry transaction (keyed `registry`, in chain order) and every allocation of "
                "a sale's proceeds (keyed by the contributor's account); at least once, "
                "idempotent by tx_id and allocation_id; docs/registry.md",
                "messages": {
                    "transaction": {
                        "payload": RegistryTransaction.model_json_schema(mode="serialization")
                    },
                    "allocation": {
                        "payload": ProceedsAllocation.model_json_schema(mode="serialization")
                    },
                },
            },
        },
        "operations": {
            "publishBehaviour": {
                "action": "send",
                "channel": {"$ref": "#/channels/partnerEvents"},
                "summary": "A partner reports one green behaviour of one person",
            },
            "subscribePostings": {
                "action": "receive",
                "channel": {"$ref": "#/channels/postings"},
                "summary": "An incentive system converts postings to points (docs/subscribers.md)",
            },
            "subscribeEngagement": {
                "action": "receive",
                "channel": {"$ref": "#/channels/engagement"},
                "summary": "An incentive system rewards sign-ins, quizzes and volunteering "
                "(docs/subscribers.md)",
            },
            "subscribeAccounts": {
                "action": "receive",
                "channel": {"$ref": "#/channels/accounts"},
                "summary": "An incentive system follows consent and family links "
                "(docs/subscribers.md)",
            },
            "subscribeRegistry": {
                "action": "receive",
                "channel": {"$ref": "#/channels/registry"},
                "summary": "An incentive system pays out a sale's proceeds; a mirror follows "
                "issuances, sales and retirements (docs/subscribers.md)",
            },
            "readDeadLetters": {
                "action": "receive",
                "channel": {"$ref": "#/channels/rejected"},
                "summary": "Operators inspect and replay refused records (carbonledger dlq)",
            },
        },
    }
