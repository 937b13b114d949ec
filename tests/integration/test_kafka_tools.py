"""Kafka's own admin tools run against the stack: `carbonledger kafka-tool ...`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from carbonledger.ops import stack
from carbonledger.services.ledger.config import LedgerSettings

pytestmark = pytest.mark.integration


def kafka_tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carbonledger.cli.main", "kafka-tool", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )


def test_consumer_groups_and_topics_are_described_by_kafkas_own_tools(
    running_stack: stack.Processes,
) -> None:
    groups = kafka_tool("consumer-groups", "--list")
    assert groups.returncode == 0, groups.stderr
    assert LedgerSettings().ledger_group in groups.stdout.split()
    described = kafka_tool("topics", "--describe", "--topic", "ledger.postings")
    assert described.returncode == 0, described.stderr
    assert "PartitionCount: 8" in described.stdout.replace("\t", " ")


def test_an_unknown_tool_names_the_known_ones() -> None:
    refused = kafka_tool("rm-rf")
    assert refused.returncode == 2 and "consumer-groups" in refused.stderr
