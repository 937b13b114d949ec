"""`carbonledger schemas`: write the partner contract documents under docs/contract/."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from carbonledger.contracts.catalogue import Rejection
from carbonledger.contracts.partners import PartnerRegistry, load_registry
from carbonledger.contracts.records import Origin
from carbonledger.contracts.schemas import asyncapi, behaviour_schemas
from carbonledger.contracts.settings import ROOT
from carbonledger.services.ingest.domain.admission import validate_event

CONTRACT_DIR = ROOT / "docs" / "contract"
SAMPLE = ROOT / "deploy" / "sample" / "partner-traffic.jsonl"
PARTNERS = ROOT / "deploy" / "partners.yaml"
EXAMPLES_PER_TYPE = 1


def _json(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def sample_examples(sample: Path = SAMPLE) -> dict[str, list[dict[str, Any]]]:
    """The first events of each type in the bundled sample that ingest accepts (the
    sample also holds events made to be refused), as the documents' examples."""
    registry = load_registry(PARTNERS)
    found: dict[str, list[dict[str, Any]]] = {}
    for n, line in enumerate(sample.read_bytes().splitlines()):
        accepted = _accepted(line, n, registry)
        if accepted is not None and len(found.setdefault(accepted["type"], [])) < EXAMPLES_PER_TYPE:
            found[accepted["type"]].append(accepted)
    return found


def _accepted(line: bytes, n: int, registry: PartnerRegistry) -> dict[str, Any] | None:
    try:
        event = json.loads(line)
        checked = validate_event(
            line,
            partner_id=event["source"],
            registry=registry,
            origin=Origin(topic="sample", partition=0, offset=n),
            now=datetime.fromisoformat(event["time"]) + timedelta(minutes=1),
        )
    except (Rejection, ValueError, KeyError, TypeError):
        return None
    return event if checked else None


def contract_files() -> dict[Path, str]:
    """Every generated document and its text, by path relative to docs/contract/."""
    from carbonledger.services.ingest.entrypoints.gateway import app as gateway

    files = {
        Path("behaviours") / f"{t}.schema.json": _json(schema)
        for t, schema in behaviour_schemas().items()
    }
    files[Path("asyncapi.yaml")] = yaml.safe_dump(
        asyncapi(sample_examples()), allow_unicode=True, sort_keys=False
    )
    files[Path("gateway.openapi.json")] = _json(gateway.openapi())
    return files


def write(folder: Path = CONTRACT_DIR) -> list[Path]:
    written = []
    for relative, text in contract_files().items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written
