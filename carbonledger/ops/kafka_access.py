"""Applying the access map (carbonledger/contracts/access.py) to a broker: SCRAM users
and ACLs, as the super user. Declarative: ACLs of our principals that the map no
longer lists are removed, so the broker holds exactly what the map says."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
    UserScramCredentialUpsertion,
)

from carbonledger.contracts import access
from carbonledger.contracts.access import Principal, Resource
from carbonledger.contracts.settings import Settings
from carbonledger.ops.admin import admin_client

log = logging.getLogger(__name__)

_RESOURCES = {Resource.TOPIC: ResourceType.TOPIC, Resource.GROUP: ResourceType.GROUP}
_PATTERNS = {True: ACLResourcePatternType.PREFIXED, False: ACLResourcePatternType.LITERAL}
_OPERATIONS = {op: ACLOperation[op.name] for op in access.Operation}


@dataclass(frozen=True)
class AccessReport:
    users: int
    acls: int
    created: int
    removed: int


def acls_of(principal: Principal) -> set[ACL]:
    return {
        ACL(
            principal=f"User:{principal.name}",
            host="*",
            operation=_OPERATIONS[op],
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePattern(
                _RESOURCES[grant.resource],
                grant.name,
                ACLResourcePatternType.PREFIXED
                if grant.prefixed
                else ACLResourcePatternType.LITERAL,
            ),
        )
        for grant in principal.grants
        for op in grant.operations
    }


def scram_mechanism(settings: Settings) -> str:
    """The SCRAM mechanism users are created for.

    The admin may log in with PLAIN (Compose's static super user) while every
    principal it creates logs in with SCRAM; those default to SCRAM-SHA-512.
    """
    if settings.kafka_sasl_mechanism.startswith("SCRAM-"):
        return settings.kafka_sasl_mechanism
    return "SCRAM-SHA-512"


def apply_access(settings: Settings, principals: tuple[Principal, ...]) -> AccessReport:
    """Create or update every principal's SCRAM secret and make its ACLs match the map."""
    wanted = set().union(*(acls_of(p) for p in principals))
    admin = admin_client(settings)
    try:
        errors = admin.alter_user_scram_credentials(
            [
                UserScramCredentialUpsertion(
                    p.name,
                    scram_mechanism(settings),
                    access.secret_of(p.name, os.environ, settings.production),
                )
                for p in principals
            ]
        )
        failed = {user: error for user, error in errors.items() if error}
        if failed:
            raise RuntimeError(f"SCRAM users not written: {failed}")
        present = _our_acls(admin)
        missing = sorted(wanted - present, key=repr)
        stale = sorted(present - wanted, key=repr)
        if missing:
            result = admin.create_acls(missing)
            if result["failed"]:
                raise RuntimeError(f"ACLs not created: {result['failed']}")
        if stale:
            admin.delete_acls(stale)
        log.info(
            "kafka access: %d users, %d ACLs (+%d -%d)",
            len(principals),
            len(wanted),
            len(missing),
            len(stale),
        )
        return AccessReport(len(principals), len(wanted), len(missing), len(stale))
    finally:
        admin.close()


def _our_acls(admin: KafkaAdminClient) -> set[ACL]:
    """ACLs whose principal is one of ours (partner or service)."""
    everything = ACLFilter(
        principal=None,
        host=None,
        operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
    )
    found, _ = admin.describe_acls(everything)
    prefixes = tuple(
        f"User:{p}"
        for p in (access.PARTNER_PREFIX, access.SERVICE_PREFIX, access.SUBSCRIBER_PREFIX)
    )
    return {acl for acl in found if acl.principal.startswith(prefixes)}


def access_map(settings: Settings) -> tuple[Principal, ...]:
    """This deployment's principals: the services and every registered partner."""
    from carbonledger.contracts.partners import load_registry
    from carbonledger.services.ledger.config import LedgerSettings

    registry = load_registry(settings.partners_file)
    return access.principals(registry.ids, LedgerSettings().ledger_group)
