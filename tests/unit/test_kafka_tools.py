"""`carbonledger kafka-tool`: Kafka's admin tools with this stack's servers and login."""

from __future__ import annotations

from pathlib import Path

import pytest

from carbonledger.contracts.settings import Settings
from carbonledger.ops import kafka_tools


def test_the_login_is_the_admins_scram_and_never_on_the_command_line(tmp_path: Path) -> None:
    settings = Settings(kafka_password='s3cr"et')
    properties = kafka_tools.client_properties(settings)
    assert "security.protocol=SASL_PLAINTEXT" in properties
    assert "sasl.mechanism=SCRAM-SHA-512" in properties
    assert 'ScramLoginModule required username="admin" password="s3cr\\"et";' in properties
    argv = kafka_tools.command(settings, "consumer-groups", ["--list"], tmp_path / "c")
    assert "s3cr" not in " ".join(argv)
    assert argv[3:] == [
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        "--bootstrap-server",
        settings.bootstrap_servers,  # the suite's own stack may have moved the port
        "--command-config",
        str(tmp_path / "c"),
        "--list",
    ]


def test_sasl_ssl_trusts_the_ca_file() -> None:
    settings = Settings(kafka_security_protocol="SASL_SSL", kafka_ssl_cafile=Path("/ca.pem"))
    properties = kafka_tools.client_properties(settings)
    assert "security.protocol=SASL_SSL" in properties
    assert "ssl.truststore.type=PEM\nssl.truststore.location=/ca.pem\n" in properties


def test_an_unknown_tool_is_refused() -> None:
    with pytest.raises(ValueError, match="consumer-groups"):
        kafka_tools.command(Settings(), "rm-rf", [], Path("c"))
