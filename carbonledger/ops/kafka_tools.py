"""Kafka's own admin tools (`kafka-consumer-groups`, `kafka-topics`...), runnable against
the stack: `carbonledger kafka-tool consumer-groups --describe --all-groups`.

The broker's jars lack them; `deploy/local/kafka.sh fetch-tools` copies Kafka's
kafka-tools jars from Maven Central under .run/tools/kafka-tools. Each run gets the
bootstrap servers and a client properties file (the admin principal's SASL login,
and TLS with the CA file under SASL_SSL) written for it, readable by this user only.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from carbonledger.contracts.settings import Settings
from carbonledger.ops import stack

# Tool name (as Kafka's bin/kafka-<name>.sh scripts call them) -> its main class.
TOOLS = {
    "topics": "org.apache.kafka.tools.TopicCommand",
    "consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "get-offsets": "org.apache.kafka.tools.GetOffsetShell",
    "log-dirs": "org.apache.kafka.tools.LogDirsCommand",
    "delete-records": "org.apache.kafka.tools.DeleteRecordsCommand",
    "leader-election": "org.apache.kafka.tools.LeaderElectionCommand",
    "reassign-partitions": "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
    "metadata-quorum": "org.apache.kafka.tools.MetadataQuorumCommand",
    "features": "org.apache.kafka.tools.FeatureCommand",
}


def client_properties(settings: Settings) -> str:
    """The Java client's settings for this stack's admin login (no secret in argv)."""
    protocol = settings.kafka_security_protocol
    lines = [f"security.protocol={protocol}"]
    if protocol != "PLAINTEXT":
        secret = settings.kafka_secret().replace("\\", "\\\\").replace('"', '\\"')
        module = (
            "org.apache.kafka.common.security.plain.PlainLoginModule"
            if settings.kafka_sasl_mechanism == "PLAIN"
            else "org.apache.kafka.common.security.scram.ScramLoginModule"
        )
        lines += [
            f"sasl.mechanism={settings.kafka_sasl_mechanism}",
            f'sasl.jaas.config={module} required username="{settings.kafka_username}" '
            f'password="{secret}";',
        ]
    if protocol == "SASL_SSL" and settings.kafka_ssl_cafile:
        lines += ["ssl.truststore.type=PEM", f"ssl.truststore.location={settings.kafka_ssl_cafile}"]
    return "\n".join(lines) + "\n"


def command(settings: Settings, tool: str, args: list[str], config: Path) -> list[str]:
    """The kafka.sh invocation of one tool, with the servers and the properties file."""
    if tool not in TOOLS:
        raise ValueError(f"unknown tool {tool!r}; one of: {', '.join(sorted(TOOLS))}")
    return [
        "bash",
        str(stack.SCRIPTS / "kafka.sh"),
        "tool",
        TOOLS[tool],
        "--bootstrap-server",
        settings.bootstrap_servers,
        "--command-config",
        str(config),
        *args,
    ]


def run(settings: Settings, tool: str, args: list[str]) -> int:
    """Runs the tool, its output to this terminal; returns its exit code."""
    with tempfile.TemporaryDirectory(prefix="kafka-tool-") as folder:
        config = Path(folder) / "client.properties"
        config.touch(mode=0o600)
        config.write_text(client_properties(settings), encoding="utf-8")
        done = subprocess.run(command(settings, tool, args, config), check=False)
        return done.returncode
