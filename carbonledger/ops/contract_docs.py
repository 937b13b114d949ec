"""`carbonledger schemas`: write the partner contract documents under docs/contract/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from carbonledger.contracts.schemas import asyncapi, behaviour_schemas
from carbonledger.contracts.settings import ROOT

CONTRACT_DIR = ROOT / "docs" / "contract"


def _json(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def contract_files() -> dict[Path, str]:
    """Every generated document and its text, by path relative to docs/contract/."""
    from carbonledger.services.ingest.entrypoints.gateway import app as gateway

    files = {
        Path("behaviours") / f"{t}.schema.json": _json(schema)
        for t, schema in behaviour_schemas().items()
    }
    files[Path("asyncapi.yaml")] = yaml.safe_dump(asyncapi(), allow_unicode=True, sort_keys=False)
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
