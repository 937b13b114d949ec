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
