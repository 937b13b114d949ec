"""Loading the methodology registry from its folder of YAML files."""

from __future__ import annotations

from pathlib import Path

import yaml

from services.quantify.domain.methodology import Methodology


def load_methodologies(folder: Path) -> list[Methodology]:
    """Every methodology version in `folder`; a malformed file refuses start-up."""
    loaded = []
    for path in sorted(folder.glob("*.yaml")):
        with path.open(encoding="utf-8") as fh:
            document = yaml.safe_load(fh)
        try:
            loaded.append(Methodology.model_validate(document))
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc
    seen = [(m.id, m.version) for m in loaded]
    if len(set(seen)) != len(seen):
        raise ValueError(f"{folder}: a methodology version is defined twice")
    return loaded
