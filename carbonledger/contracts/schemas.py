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


KAFKA_BINDING = "0.5.0"
HTTP_BINDING = "0.3.0"
_BY_SUBJECT = "the subject (64 hex digits), so that one person's records keep their order"
_SERVERS = ["#/servers/production", "#/servers/local"]
_SCHEMAS = "#/components/schemas/"


def _key(description: str, pattern: str | None = None) -> dict[str, Any]:
    """A Kafka message binding naming the record key."""
    key: dict[str, Any] = {"type": "string", "description": description}
    if pattern:
        key["pattern"] = pattern
    return {"kafka": {"key": key, "bindingVersion": KAFKA_BINDING}}


def _topic(name: str | None, partitions: int, max_bytes: int | None = None) -> dict[str, Any]:
    binding: dict[str, Any] = {"partitions": partitions, "bindingVersion": KAFKA_BINDING}
    if name:
        binding["topic"] = name
    if max_bytes:
        binding["topicConfiguration"] = {"max.message.bytes": max_bytes}
    return {"kafka": binding}


def _internal(name: str, model: type[Any], summary: str, key: str = _BY_SUBJECT) -> dict[str, Any]:
    """A pipeline topic: its record's schema inline here, hoisted into components later."""
    return {
        "address": name,
        "description": summary,
        "servers": [{"$ref": s} for s in _SERVERS],
        "bindings": _topic(name, topics.PIPELINE_PARTITIONS),
        "messages": {
            "record": {
                "name": model.__name__,
                "contentType": "application/json",
                "payload": model.model_json_schema(mode="serialization"),
                "bindings": _key(key),
            }
        },
    }


def _partner_message(behaviour_type: str, examples: list[dict[str, Any]]) -> dict[str, Any]:
    spec = CATALOGUE[behaviour_type]
    message: dict[str, Any] = {
        "name": behaviour_type,
        "title": spec.title,
        "contentType": "application/cloudevents+json",
        "payload": {"$ref": f"{_SCHEMAS}{behaviour_type}"},
        "traits": [{"$ref": "#/components/messageTraits/binaryMode"}],
        "bindings": _key(_BY_SUBJECT, SUBJECT_PATTERN.pattern),
    }
    if examples:
        message["examples"] = [
            {"name": e["id"], "summary": "from the bundled sample", "payload": e} for e in examples
        ]
    return message


def _binary_mode() -> dict[str, Any]:
    """CloudEvents' Kafka binary content mode: the attributes in `ce_` headers, the
    data alone as the value. Ingest admits it exactly like the structured event."""
    return {
        "description": "Either structured mode (the whole CloudEvent as the value, the payload "
        "below) or binary mode: each attribute in a `ce_<name>` header (`ce_specversion`, "
        "`ce_id`, `ce_source`, `ce_type`, `ce_time`, `ce_subject`, `ce_subjectkind`), the "
        "header `content-type: application/json`, and the event's `data` alone as the value. "
        "Both are validated alike and get the same ids.",
        "headers": {
            "type": "object",
            "properties": {
                "content-type": {"type": "string"},
                **{f"ce_{a}": {"type": "string"} for a in _CE_HEADERS},
            },
        },
    }


_CE_HEADERS = ("specversion", "id", "source", "type", "time", "subject", SUBJECT_KIND_ATTRIBUTE)


def _security_schemes() -> dict[str, Any]:
    return {
        "scram": {
            "type": "scramSha512",
            "description": "SASL SCRAM-SHA-512 with the principal and secret the operator issued "
            "(docs/partners.md); over TLS (SASL_SSL) in production",
        },
        "partnerId": {"type": "httpApiKey", "name": "X-Carbon-Partner", "in": "header"},
        "timestamp": {
            "type": "httpApiKey",
            "name": "X-Carbon-Timestamp",
            "in": "header",
            "description": "Unix seconds when signed; refused outside the replay window",
        },
        "signature": {
            "type": "httpApiKey",
            "name": "X-Carbon-Signature",
            "in": "header",
            "description": "hex HMAC-SHA256 of '<timestamp>.<body>' with the partner's secret",
        },
    }


def _servers() -> dict[str, Any]:
    scram = [{"$ref": "#/components/securitySchemes/scram"}]
    signed = [{"$ref": f"#/components/securitySchemes/{s}"} for s in _GATEWAY_SCHEMES]
    return {
        "production": {
            "host": "{bootstrap}",
            "protocol": "kafka-secure",
            "description": "SASL_SSL: SCRAM-SHA-512 over TLS, the broker's certificate signed by "
            "the operator's CA (CARBON_KAFKA_SSL_CAFILE)",
            "variables": {"bootstrap": {"default": "kafka.carbonledger.example:9093"}},
            "security": scram,
        },
        "local": {
            "host": "127.0.0.1:19092",
            "protocol": "kafka",
            "description": "make demo: SCRAM-SHA-512 over plaintext, loopback only",
            "security": scram,
        },
        "gateway": {
            "host": "gateway.carbonledger.example",
            "protocol": "https",
            "pathname": "/v1",
            "description": "The HTTP gateway for partners without a Kafka producer (OpenAPI: "
            "gateway.openapi.json)",
            "security": signed,
        },
    }


_GATEWAY_SCHEMES = ("partnerId", "timestamp", "signature")


def _hoist(doc: dict[str, Any]) -> None:
    """Moves each payload's `$defs` into components/schemas, and points its refs there:
    a pydantic schema refers to `#/$defs/X` from inside the payload, which the AsyncAPI
    parser resolves from the document's root, where it does not exist."""
    found: dict[str, Any] = doc["components"]["schemas"]
    for channel in doc["channels"].values():
        for message in channel["messages"].values():
            payload = message.get("payload", {})
            for name, schema in payload.pop("$defs", {}).items():
                if found.setdefault(name, schema) != schema:
                    raise ValueError(f"two record schemas define {name} differently")
    _repoint(doc["channels"])
    _repoint(found)


def _repoint(node: Any) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            node["$ref"] = _SCHEMAS + ref.removeprefix("#/$defs/")
        for value in node.values():
            _repoint(value)
    elif isinstance(node, list):
        for value in node:
            _repoint(value)


def _unwrapped(schema: dict[str, Any]) -> dict[str, Any]:
    """A behaviour schema as a component: without the standalone file's `$schema`/`$id`."""
    return {k: v for k, v in schema.items() if k not in ("$schema", "$id")}


def asyncapi(examples: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """AsyncAPI 3.1 of the partner topics and the pipeline topics behind them, self-contained
    (every schema under components) so that the ecosystem's parser accepts it. `examples`:
    partner events by type (the bundled sample's), shown on each message."""
    examples = examples or {}
    partner_messages = {
        t.replace(".", "_"): {"$ref": f"#/components/messages/{t.replace('.', '_')}"}
        for t in sorted(CATALOGUE)
    }
    doc: dict[str, Any] = {
        "asyncapi": "3.1.0",
        "info": {
            "title": "Carbon inclusion ledger: event contract",
            "version": __version__,
            "description": "Partners publish CloudEvents 1.0 (UTF-8 JSON, structured or binary "
            "content mode) to their own topic, or post them to the HTTP gateway; see "
            "docs/partners.md and the partner SDK (sdk/python). Internal topics are listed for "
            "operators.",
            "license": {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"},
        },
        "servers": _servers(),
        "channels": {
            "partnerEvents": {
                "address": "partner.{partnerId}.events",
                "description": f"One topic per registered partner, {topics.PARTNER_PARTITIONS} "
                "partitions; key by subject so one person's events keep their order. Records up "
                f"to {topics.PARTNER_MAX_BYTES} bytes at the broker. The extension attribute "
                "`subjectkind` (person, the default, or unit) says whose behaviour it is.",
                "servers": [{"$ref": s} for s in _SERVERS],
                "parameters": {"partnerId": {"description": "the partner id in the registry"}},
                "bindings": _topic(None, topics.PARTNER_PARTITIONS, topics.PARTNER_MAX_BYTES),
                "messages": partner_messages,
            },
            "gatewayEvents": {
                "address": "/events",
                "description": "The same events posted to the HTTP gateway, one JSON object or "
                "a JSON array of them, the request signed (gateway.openapi.json)",
                "servers": [{"$ref": "#/servers/gateway"}],
                "messages": dict(partner_messages),
            },
            "validated": _internal(
                topics.VALIDATED, ValidatedBehaviour, "ingest → quantify, keyed by subject"
            ),
            "rejected": _internal(
                topics.REJECTED,
                DeadLetter,
                "dead letters: original bytes, origin, reason",
                key="the refused record's own key",
            ),
            "claims": _internal(
                topics.CLAIMS,
                ReductionClaim,
                "quantify → dedupe, keyed by dedupe group: the subject, or a global natural "
                "key's group (~global/<class>/<key>) for types credited once whoever reports",
                key="the dedupe group: the subject, or ~global/<class>/<key>",
            ),
            "decisions": _internal(
                topics.DECISIONS, Decision, "dedupe → ledger writer: credit, reverse, duplicate"
            ),
            "postings": _internal(
                topics.POSTINGS,
                LedgerPosting,
                "ledger → incentive systems, keyed by book:account; at least once, idempotent "
                "by posting_id, with running balance and hash-chain link",
                key="<book>:<account>",
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
            "postBehaviour": {
                "action": "send",
                "channel": {"$ref": "#/channels/gatewayEvents"},
                "summary": "A partner without a Kafka producer posts events to the gateway",
                "bindings": {"http": {"method": "POST", "bindingVersion": HTTP_BINDING}},
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
        "components": {
            "schemas": {t: _unwrapped(s) for t, s in behaviour_schemas().items()},
            "messages": {
                t.replace(".", "_"): _partner_message(t, examples.get(t, []))
                for t in sorted(CATALOGUE)
            },
            "messageTraits": {"binaryMode": _binary_mode()},
            "securitySchemes": _security_schemes(),
        },
    }
    _hoist(doc)
    return doc


# A trip from the bundled sample (deploy/sample/partner-traffic.jsonl), for the gateway's
# OpenAPI; docs/contract/asyncapi.yaml carries one example of every type it holds.
GATEWAY_EXAMPLE: dict[str, Any] = {
    "specversion": "1.0",
    "id": "shenzhen-metro-000183",
    "source": "shenzhen-metro",
    "type": "travel.metro",
    "time": "2026-10-17T21:58:00+08:00",
    "subject": "99e097e304ea5f1843aae1a37eab2103b08fa202a2735e77568366ee15e85f59",
    "datacontenttype": "application/json",
    "data": {
        "region": "440304",
        "started_at": "2026-10-17T21:43:00+08:00",
        "ended_at": "2026-10-17T21:58:00+08:00",
        "distance_km": 7.5,
        "line": "L13",
    },
}


def cloud_event_schema() -> dict[str, Any]:
    """Any partner event, as the gateway's OpenAPI gives it to generated clients: the
    envelope exactly, the data as an object whose fields its type's schema lists."""
    kinds = [k.value for k in SubjectKind]
    return {
        "type": "object",
        "title": "CloudEvent",
        "description": "A CloudEvents 1.0 event in structured mode; the fields of `data` for "
        "each type: docs/contract/behaviours/<type>.schema.json",
        "properties": {
            "specversion": {"type": "string", "enum": ["1.0"]},
            "id": {"type": "string", "minLength": 1, "maxLength": 256},
            "source": {"type": "string", "pattern": topics.PARTNER_ID_PATTERN},
            "type": {"type": "string", "enum": sorted(CATALOGUE)},
            "time": {"type": "string", "format": "date-time"},
            "subject": {"type": "string", "pattern": SUBJECT_PATTERN.pattern},
            "datacontenttype": {"type": "string", "enum": ["application/json"]},
            SUBJECT_KIND_ATTRIBUTE: {"type": "string", "enum": kinds, "default": kinds[0]},
            "data": {"type": "object", "additionalProperties": True},
        },
        "required": ["specversion", "id", "source", "type", "time", "subject", "data"],
        "additionalProperties": False,
    }


def gateway_request_body(max_events: int) -> dict[str, Any]:
    """The OpenAPI requestBody of `POST /v1/events`: one event or an array of them."""
    event = {"$ref": "#/components/schemas/CloudEvent"}
    return {
        "required": True,
        "description": "The exact bytes are signed (X-Carbon-Signature), so send them as signed",
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [
                        event,
                        {"type": "array", "items": event, "maxItems": max_events},
                    ]
                },
                "examples": {
                    "one": {"summary": "one event", "value": GATEWAY_EXAMPLE},
                    "batch": {"summary": "a batch", "value": [GATEWAY_EXAMPLE]},
                },
            }
        },
    }
