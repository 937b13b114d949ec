"""The methodology registry the ledger's claims name, every version."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from carbonledger.contracts.methodology import Methodology
from carbonledger.services.ledger.entrypoints.api.auth import PUBLIC
from carbonledger.services.ledger.entrypoints.api.deps import Methodologies
from carbonledger.services.ledger.entrypoints.api.schemas import MethodologySummary

router = APIRouter(prefix="/v1/methodologies", tags=["methodologies"], dependencies=[PUBLIC])


@router.get("", response_model=list[MethodologySummary])
def methodologies(registry: Methodologies) -> list[MethodologySummary]:
    """Every methodology version in the registry, active or not."""
    return [
        MethodologySummary(
            **m.model_dump(include=set(MethodologySummary.model_fields) - {"behaviours"}),
            behaviours=sorted(m.behaviours),
        )
        for _, m in sorted(registry.items())
    ]


@router.get("/{methodology_id}/{version}", response_model=Methodology)
def methodology(methodology_id: str, version: str, registry: Methodologies) -> Methodology:
    """One version with every factor, its unit, source and confidence, caps and parameters."""
    found = registry.get((methodology_id, version))
    if found is None:
        raise HTTPException(404, f"no methodology {methodology_id}@{version}")
    return found
