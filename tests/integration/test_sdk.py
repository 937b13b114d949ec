"""The partner SDK (sdk/python) as a partner uses it, and CloudEvents binary mode:
installed alone into a fresh virtual environment with its own tests passing; producing
to the local broker in binary mode (the CloudEvents SDK's Kafka binding and the
partner SDK's) credited exactly like the structured twin; a gateway round trip."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from carbonledger_partner import (
    GatewayClient,
    GatewayError,
    behaviour_event,
    encode,
    kafka_python_settings,
    kafka_record,
    partner_topic,
    person_subject,
)
from cloudevents.core.bindings.kafka import to_binary_event
from cloudevents.core.v1.event import CloudEvent
from kafka import KafkaProducer

from carbonledger.contracts.calendar import CST
from carbonledger.contracts.settings import ROOT, Settings
from carbonledger.demo.sample import DEMO_IDENTITY_KEY
from carbonledger.ops import stack
from tests.integration.helpers import expected, postings_of_events, wait_for_balances

pytestmark = pytest.mark.integration

SDK = ROOT / "sdk" / "python"


def test_the_sdk_installs_alone_into_a_fresh_venv_and_its_tests_pass(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", f"{SDK}[test]"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert install.returncode == 0, install.stderr
    alone = subprocess.run(
        [python, "-c", "import carbonledger"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,  # not the checkout, whose folder would be importable
    )
    assert alone.returncode != 0  # the platform is not there: the SDK does not need it
    tested = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(SDK / "tests")],
        capture_output=True,
        text=True,
        check=False,
        cwd=SDK,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert " passed" in tested.stdout


def trip(n: int, partner: str) -> dict[str, Any]:
    ended = datetime(2026, 10, 13, 9, tzinfo=CST) + timedelta(hours=n)
    return behaviour_event(
        partner=partner,
        id=f"sdk-binary-{n}",
        type="travel.metro",
        time=ended,
        subject=person_subject(DEMO_IDENTITY_KEY, f"+86139000770{n:02d}"),
        data={
            "region": "440305",
            "started_at": (ended - timedelta(minutes=25)).isoformat(),
            "ended_at": ended.isoformat(),
            "distance_km": "12.4",
        },
    )


def cloudevents_sdk_binary(event: dict[str, Any]) -> tuple[list[tuple[str, bytes]], bytes]:
    attributes = {k: v for k, v in event.items() if k != "data"}
    attributes["time"] = datetime.fromisoformat(str(event["time"]))
    message = to_binary_event(CloudEvent(attributes=attributes, data=event["data"]))
    return list(message.headers.items()), message.value


def test_binary_mode_events_are_credited_exactly_like_their_structured_twins(
    settings: Settings, db: psycopg.Connection, running_stack: stack.Processes
) -> None:
    partner = "navi-maps"
    config = kafka_python_settings(
        partner,
        f"partner-{partner}-dev-only",
        settings.bootstrap_servers,
        security_protocol="SASL_PLAINTEXT",
    )
    producer = KafkaProducer(**config)
    first, second = trip(0, partner), trip(1, partner)
    headers, value = cloudevents_sdk_binary(first)
    topic = partner_topic(partner)
    producer.send(topic, key=str(first["subject"]).encode(), value=value, headers=headers)
    twin = kafka_record(first)  # the same event in structured mode: no second credit
    producer.send(topic, key=twin.key, value=twin.value)
    record = kafka_record(second, mode="binary")
    producer.send(topic, key=record.key, value=record.value, headers=record.headers)
    producer.flush(timeout=30)
    producer.close()
    want = dict(expected(settings, [(partner, encode(first)), (partner, encode(second))]).personal)
    assert want and wait_for_balances(settings, db, want) == want
    postings = postings_of_events(db, [(partner, "sdk-binary-0"), (partner, "sdk-binary-1")])
    assert postings == {(partner, "sdk-binary-0"): 3, (partner, "sdk-binary-1"): 3}


def test_the_sdk_gateway_client_round_trip(running_stack: stack.Processes) -> None:
    url = f"http://127.0.0.1:{running_stack.port('gateway')}"
    client = GatewayClient(url, "shenzhen-metro", "shenzhen-metro-dev-secret")
    checked = client.check([trip(5, "shenzhen-metro"), trip(6, "navi-maps")])
    assert checked["accepted"] == 1 and checked["results"][1]["reason"] == "source_mismatch"
    answer = client.send([trip(5, "shenzhen-metro"), trip(6, "navi-maps")])
    assert answer["accepted"] == 1 and answer["results"][1]["reason"] == "source_mismatch"
    with pytest.raises(GatewayError) as refused:
        GatewayClient(url, "shenzhen-metro", "not-the-secret").send([trip(7, "shenzhen-metro")])
    assert refused.value.status == 401


def python_examples() -> list[str]:
    text = (ROOT / "docs" / "partners.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_the_partner_guide_examples_run_and_are_credited(
    settings: Settings,
    db: psycopg.Connection,
    running_stack: stack.Processes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/partners.md's Python, as a partner would paste it, against the local stack."""
    monkeypatch.setenv("CARBON_IDENTITY_KEY", DEMO_IDENTITY_KEY.decode())
    monkeypatch.setenv("SHENZHEN_METRO_KAFKA_SECRET", "partner-shenzhen-metro-dev-only")
    monkeypatch.setenv("KAFKA_BOOTSTRAP", settings.bootstrap_servers)
    monkeypatch.setenv("GATEWAY_URL", f"http://127.0.0.1:{running_stack.port('gateway')}")
    monkeypatch.setenv("NAVI_MAPS_GATEWAY_SECRET", "navi-maps-dev-secret")
    producing, with_sdk, by_hand = python_examples()
    ran = []
    for code in (producing, with_sdk, by_hand):
        namespace: dict[str, Any] = {}
        exec(compile(code, "docs/partners.md", "exec"), namespace)
        ran.append(namespace)
    assert ran[1]["answer"]["accepted"] == 1 and ran[2]["answer"]["accepted"] == 1
    records = [
        ("shenzhen-metro", encode(ran[0]["event"])),
        ("navi-maps", encode(ran[1]["trip"])),
        ("navi-maps", ran[2]["body"][1:-1]),
    ]
    want = dict(expected(settings, records).personal)
    assert len(want) == 3 and wait_for_balances(settings, db, want) == want
