import logging
import uuid

import pytest
from pydantic import ValidationError

from carbonledger.contracts import ids, topics
from carbonledger.contracts.catalogue import CATALOGUE
from carbonledger.contracts.partners import load_registry, parse_registry
from carbonledger.contracts.settings import Settings


def test_partner_topics_round_trip() -> None:
    assert topics.partner_topic("shenzhen-metro") == "partner.shenzhen-metro.events"
    assert topics.partner_of_topic("partner.shenzhen-metro.events") == "shenzhen-metro"
    assert topics.partner_of_topic("behaviour.validated") is None
    assert topics.partner_of_topic("partner..events") is None


def test_keyed_state_logs_are_compacted_and_event_logs_are_not() -> None:
    by_name = {t.name: t for t in topics.pipeline_topics()}
    assert by_name[topics.DEDUPE_CHANGELOG].config()["cleanup.policy"] == "compact"
    assert by_name[topics.DECISIONS].config()["cleanup.policy"] == "delete"
    assert len({t.partitions for t in by_name.values()}) == 1  # co-partitioned stages


def test_ids_are_deterministic_and_distinct() -> None:
    assert ids.event_id("a", "1") == ids.event_id("a", "1")
    assert ids.event_id("a", "1") != ids.event_id("a1", "")
    claim = ids.claim_id(ids.event_id("a", "1"), "m", "1")
    assert ids.posting_id(ids.decision_id("credit", claim), "personal") != ids.posting_id(
        ids.decision_id("credit", claim), "enterprise"
    )


def test_shipped_partner_registry_is_valid() -> None:
    registry = load_registry(Settings().partners_file)
    assert len(registry.partners) >= 2
    assert all(p.behaviours <= CATALOGUE.keys() for p in registry.partners)


def test_registry_refuses_unknown_behaviours_and_duplicate_ids() -> None:
    entry = {"id": "a-app", "name": "A", "kind": "x", "behaviours": ["travel.metro"]}
    with pytest.raises(ValidationError, match="unknown behaviour"):
        parse_registry({"partners": [{**entry, "behaviours": ["travel.rocket"]}]})
    with pytest.raises(ValidationError, match="listed twice"):
        parse_registry({"partners": [entry, entry]})


def test_production_refuses_the_development_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARBON_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="CARBON_PG_PASSWORD"):
        Settings()
    monkeypatch.setenv("CARBON_PG_PASSWORD", "a-real-database-secret")
    assert Settings().environment == "production"


def _ranked(evidence_rank: dict[str, int]) -> dict[str, object]:
    entry = {"id": "food-app", "name": "Food", "kind": "delivery"}
    return {
        "partners": [{**entry, "behaviours": ["food.no_cutlery"], "evidence_rank": evidence_rank}]
    }


def test_the_old_class_name_order_is_read_as_no_cutlery_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="carbonledger.contracts.partners"):
        partner = parse_registry(_ranked({"order": 30, "trip": 5})).partners[0]
    assert partner.evidence_rank == {"no_cutlery": 30, "trip": 5}
    assert partner.rank("no_cutlery") == 30
    (warning,) = caplog.records
    assert warning.levelno == logging.WARNING
    assert "food-app" in warning.getMessage() and "rename it" in warning.getMessage()


def test_a_registry_without_old_names_loads_silently(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="carbonledger.contracts.partners"):
        partner = parse_registry(_ranked({"no_cutlery": 30})).partners[0]
    assert partner.evidence_rank == {"no_cutlery": 30} and caplog.records == []


def test_both_the_old_and_the_new_class_name_are_refused() -> None:
    with pytest.raises(ValidationError, match="keep only 'no_cutlery'"):
        parse_registry(_ranked({"order": 30, "no_cutlery": 20}))


@pytest.mark.parametrize("misspelt", ["trips", "Trip", "no-cutlery", ""])
def test_an_evidence_rank_class_no_catalogue_type_has_is_refused(misspelt: str) -> None:
    with pytest.raises(ValidationError, match="evidence_rank names classes no catalogue type"):
        parse_registry(_ranked({misspelt: 10}))


def test_every_shipped_evidence_rank_names_a_catalogue_class() -> None:
    classes = {b.activity_class for b in CATALOGUE.values()}
    for partner in load_registry(Settings().partners_file).partners:
        assert partner.evidence_rank.keys() <= classes, partner.id


@pytest.mark.parametrize(
    "parts",
    [
        ("event", "navi-maps", "trip-1"),
        ("claim", uuid.UUID("0b8e1f6e-2f57-5d1c-9a43-3f1d8c2a7b10"), "m", "1"),
        ("decision", "credit", "x", 3),
        ("event", "合作方", "\u00e9v\u00e9nement"),
        ("dead-letter", "partner.a.events", 0, 2**63 - 1),
    ],
)
def test_derived_ids_are_uuid5_of_the_joined_parts(parts: tuple[object, ...]) -> None:
    # _derive builds uuid5's bits itself (faster): it must stay uuid5, bit for bit.
    kind, *rest = parts
    expected = uuid.uuid5(ids.NAMESPACE, "\x1f".join([str(kind), *map(str, rest)]))
    derived = ids._derive(str(kind), *rest)
    assert derived == expected and derived.version == 5 and str(derived) == str(expected)
