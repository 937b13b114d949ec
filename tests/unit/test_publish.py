"""Publishing partner records: failed sends are sent again, and a lasting failure is raised."""

from __future__ import annotations

import pytest

from carbonledger.contracts.settings import Settings
from carbonledger.ops import publish as pub

Records = list[tuple[str, bytes]]


def test_failed_sends_are_sent_again_until_all_land(monkeypatch: pytest.MonkeyPatch) -> None:
    rounds: list[Records] = []

    def send(settings: Settings, records: Records) -> Records:
        rounds.append(records)
        return records[1:]  # one more record lands each round

    monkeypatch.setattr(pub, "_send", send)
    records = [("metro", b"a"), ("metro", b"b"), ("navi", b"c")]
    assert pub.publish(Settings(), records, attempts=3) == 3
    assert rounds == [records, records[1:], records[2:]]


def test_records_still_failing_after_every_attempt_are_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = []

    def send(settings: Settings, records: Records) -> Records:
        calls.append(len(records))
        return records  # the broker refuses everything

    monkeypatch.setattr(pub, "_send", send)
    with pytest.raises(RuntimeError, match="2 records could not be published"):
        pub.publish(Settings(), [("metro", b"a"), ("metro", b"b")], attempts=2)
    assert calls == [2, 2]
