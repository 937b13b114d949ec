"""Admission of partner records: bytes in, a validated behaviour or a dead letter out.

Pure: no Kafka, no clock of its own (`now` is passed in). Every way a record can
fail ends in a `Rejection` with a stable reason code, never in an exception that
would stop a consumer.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import ValidationError

from carbonledger.contracts import ids
from carbonledger.contracts.accounts import family_pair_fault
from carbonledger.contracts.catalogue import (
    CATALOGUE,
    BehaviourData,
    Reason,
    Rejection,
    is_account_type,
    validate_data,
)
from carbonledger.contracts.envelope import SUBJECT_PATTERN, PartnerEvent
from carbonledger.contracts.exact import NotExactError
from carbonledger.contracts.partners import Partner, PartnerRegistry
from carbonledger.contracts.records import DeadLetter, EventRef, Origin, ValidatedBehaviour
from carbonledger.contracts.strict_json import DuplicateKeyError, TooDeepError, loads_strict

MAX_RECORD_BYTES = 1_048_576


def _decode(raw: bytes, max_bytes: int) -> PartnerEvent:
    if len(raw) > max_bytes:
        raise Rejection(Reason.OVERSIZED, f"record of {len(raw)} bytes exceeds {max_bytes}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejection(Reason.NOT_UTF8, f"not UTF-8 at byte {exc.start}") from exc
    try:
        document = loads_strict(text)
    except TooDeepError as exc:
        raise Rejection(Reason.TOO_DEEP, str(exc)) from exc
    except DuplicateKeyError as exc:
        raise Rejection(Reason.DUPLICATE_KEY, str(exc)) from exc
    except (ValueError, NotExactError, RecursionError) as exc:
        raise Rejection(Reason.NOT_JSON, f"not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise Rejection(Reason.NOT_AN_OBJECT, "a CloudEvent must be a JSON object")
    try:
        return PartnerEvent.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "event"
        raise Rejection(Reason.INVALID_ENVELOPE, f"{where}: {first['msg']}") from exc


def _authorise(event: PartnerEvent, partner_id: str | None, registry: PartnerRegistry) -> Partner:
    if partner_id is None:
        raise Rejection(Reason.UNKNOWN_PARTNER, "record did not arrive through a partner channel")
    if event.source != partner_id:
        raise Rejection(
            Reason.SOURCE_MISMATCH,
            f"source {event.source!r} is not the authenticated partner {partner_id!r}",
        )
    partner = registry.get(partner_id)
    if partner is None:
        raise Rejection(Reason.UNKNOWN_PARTNER, f"partner {partner_id!r} is not registered")
    if not partner.enabled:
        raise Rejection(Reason.PARTNER_DISABLED, f"partner {partner_id!r} is disabled")
    if event.type not in CATALOGUE:
        raise Rejection(Reason.UNKNOWN_TYPE, f"{event.type!r} is not in the behaviour catalogue")
    # Account events (consent, family links) are not behaviours: every partner may
    # report its users' consent and links, whatever it may report besides.
    if event.type not in partner.behaviours and not is_account_type(event.type):
        raise Rejection(
            Reason.TYPE_NOT_ALLOWED, f"partner {partner_id!r} may not report {event.type}"
        )
    if not SUBJECT_PATTERN.match(event.subject):
        raise Rejection(Reason.INVALID_SUBJECT, "subject must be 64 lowercase hex (HMAC-SHA256)")
    return partner


def validate_event(
    raw: bytes,
    *,
    partner_id: str | None,
    registry: PartnerRegistry,
    origin: Origin,
    now: datetime,
    max_bytes: int = MAX_RECORD_BYTES,
) -> ValidatedBehaviour:
    """Validate one partner record; raises `Rejection` with the reason it fails."""
    event = _decode(raw, max_bytes)
    partner = _authorise(event, partner_id, registry)
    spec = CATALOGUE[event.type]
    data = validate_data(spec, event.data, event.time, now)
    if spec.activity_class == "family":
        _check_family(event.subject, data)
    return ValidatedBehaviour(
        event_id=ids.event_id(event.source, event.id),
        event=EventRef(source=event.source, id=event.id),
        type=event.type,
        activity_class=spec.activity_class,
        subject=event.subject,
        subject_kind=event.subjectkind,
        time=event.time,
        region=data.region,
        started_at=data.started_at,
        ended_at=data.ended_at,
        natural_key=data.natural_key,
        # Stamped here, from the registry in force, so every later decision about
        # the event is a function of its records alone (replays and settle agree).
        evidence_rank=partner.rank(spec.activity_class),
        consent_required=partner.consent_required,
        data=data.fields,
        origin=origin,
        received_at=now,
    )


def _check_family(subject: str, data: BehaviourData) -> None:
    """A family link names two subjects, and it is reported by one of them: each
    side's partner reports its own user's acceptance."""
    fault = family_pair_fault(data.fields["head"], data.fields["member"], subject)
    if fault is not None:
        raise Rejection(Reason.INVALID_FIELD, fault)


def dead_letter(
    rejection: Rejection,
    raw: bytes,
    key: bytes | None,
    *,
    stage: str,
    partner_id: str | None,
    origin: Origin,
    now: datetime,
) -> DeadLetter:
    """The dead letter of a refused record: the original bytes, where, and why."""
    return DeadLetter.of(
        stage=stage,
        reason=rejection.reason.value,
        message=rejection.message,
        partner=partner_id,
        origin=origin,
        key=key,
        payload=raw,
        received_at=now,
    )


def admit(
    raw: bytes | None,
    key: bytes | None,
    *,
    partner_id: str | None,
    registry: PartnerRegistry,
    origin: Origin,
    now: datetime,
    max_bytes: int = MAX_RECORD_BYTES,
) -> ValidatedBehaviour | DeadLetter:
    """Validate a record, or dead-letter it with its reason; never raises for bad input."""
    payload = raw if raw is not None else b""
    try:
        return validate_event(
            payload,
            partner_id=partner_id,
            registry=registry,
            origin=origin,
            now=now,
            max_bytes=max_bytes,
        )
    except Rejection as rejection:
        return dead_letter(
            rejection, payload, key, stage="ingest", partner_id=partner_id, origin=origin, now=now
        )
