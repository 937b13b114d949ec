"""Loading the methodology registry from its folder of YAML files.

Published versions are immutable: `published.sha256` in the folder holds the
SHA-256 of every published file, and loading refuses a file whose bytes differ
(an edited published version) or that was never published. A corrected factor
is a new version file, published with `carbonledger methodologies publish`.

Every loader (the quantify stage, `settle`, recompute, the ledger API, the CLI)
comes through `load_methodologies`, so the registry-wide checks live here too: a
`supersedes` naming no version, or two versions selection could not choose
between (`check_registry`), refuse the whole folder.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from carbonledger.contracts.methodology import Methodology, check_registry

LOCK_FILE = "published.sha256"


class RegistryError(ValueError):
    """The registry folder cannot be trusted as it is."""


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def published(folder: Path) -> dict[str, str]:
    """File name -> SHA-256 of every published version."""
    lock = folder / LOCK_FILE
    if not lock.exists():
        return {}
    entries = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            checksum, name = line.split(maxsplit=1)
            entries[name.strip()] = checksum
    return entries


def parse(path: Path) -> Methodology:
    try:
        with path.open(encoding="utf-8") as fh:
            document = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise RegistryError(f"{path}: not YAML: {exc}") from exc
    try:
        return Methodology.model_validate(document)
    except ValueError as exc:
        raise RegistryError(f"{path}: {exc}") from exc


def load_methodologies(folder: Path) -> list[Methodology]:
    """Every published methodology version in `folder`; anything untrustworthy refuses start-up."""
    locked = published(folder)
    loaded = []
    for path in sorted(folder.glob("*.yaml")):
        if path.name not in locked:
            raise RegistryError(
                f"{path} is not published (run `carbonledger methodologies "
                f"publish {path}` once it is final)"
            )
        if digest(path) != locked[path.name]:
            raise RegistryError(
                f"{path} differs from its published checksum: published versions "
                f"are immutable, publish a corrected factor as a new version"
            )
        methodology = parse(path)
        expected_name = f"{methodology.id}@{methodology.version}.yaml"
        if path.name != expected_name:
            raise RegistryError(
                f"{path} holds {methodology.id}@{methodology.version}; name it {expected_name}"
            )
        loaded.append(methodology)
    try:
        check_registry(loaded)
    except ValueError as exc:
        raise RegistryError(f"{folder}: {exc}") from exc
    return loaded


def publish(path: Path) -> str:
    """Record a new version file's checksum; refuses to re-publish a changed file, and
    a version the registry would refuse at load (it makes selection ambiguous)."""
    methodology = parse(path)
    folder, checksum = path.parent, digest(path)
    locked = published(folder)
    others = [
        parse(folder / name)
        for name in sorted(locked)
        if name != path.name and (folder / name).exists()
    ]
    try:
        check_registry([*others, methodology])
    except ValueError as exc:
        raise RegistryError(f"{path.name} cannot be published: {exc}") from exc
    if path.name in locked:
        if locked[path.name] != checksum:
            raise RegistryError(f"{path.name} is already published with other content")
        return checksum
    with (folder / LOCK_FILE).open("a", encoding="utf-8") as fh:
        fh.write(f"{checksum}  {path.name}\n")
    return checksum
