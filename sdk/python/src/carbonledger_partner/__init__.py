"""Partner SDK of the carbon inclusion ledger (碳普惠).

Everything a partner or an incentive system needs from the platform, and nothing of
the platform itself: the pseudonymous subjects (`subjects`), CloudEvents in structured
or binary Kafka mode (`events`), recommended producer settings for kafka-python and
confluent-kafka (`kafka`), the gateway's request signature and a client for it
(`signing`, `gateway`), and the records published to incentive systems (`records`).
"""

from carbonledger_partner.events import KafkaRecord, behaviour_event, encode, kafka_record
from carbonledger_partner.gateway import GatewayClient, GatewayError
from carbonledger_partner.kafka import confluent_settings, kafka_python_settings, partner_topic
from carbonledger_partner.signing import sign, signed_headers
from carbonledger_partner.subjects import person_subject, unit_subject

__all__ = [
    "GatewayClient",
    "GatewayError",
    "KafkaRecord",
    "behaviour_event",
    "confluent_settings",
    "encode",
    "kafka_python_settings",
    "kafka_record",
    "partner_topic",
    "person_subject",
    "sign",
    "signed_headers",
    "unit_subject",
]
