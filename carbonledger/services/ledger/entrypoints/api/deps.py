"""Typed dependencies of the ledger API's routes: what the lifespan built, and a
pooled connection for the views, one per request."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated

import psycopg
from fastapi import Depends, Query, Request
from psycopg_pool import ConnectionPool

from carbonledger.contracts.methodology import Methodology
from carbonledger.contracts.regions import RegionTable
from carbonledger.services.ledger.config import LedgerSettings

MethodologyKey = tuple[str, str]  # (id, version)


@dataclass(frozen=True)
class Registries:
    """What the app's lifespan builds once and every request shares."""

    settings: LedgerSettings
    pool: ConnectionPool
    regions: RegionTable
    methodologies: Mapping[MethodologyKey, Methodology]


def registries(request: Request) -> Registries:
    built: Registries = request.app.state.registries
    return built


RegistriesDep = Annotated[Registries, Depends(registries)]


def settings(built: RegistriesDep) -> LedgerSettings:
    return built.settings


def connection(built: RegistriesDep) -> Iterator[psycopg.Connection]:
    """A pooled autocommit connection, for the views (adapters/views.py)."""
    with built.pool.connection() as conn:
        yield conn


def regions(built: RegistriesDep) -> RegionTable:
    return built.regions


def methodologies(built: RegistriesDep) -> Mapping[MethodologyKey, Methodology]:
    return built.methodologies


SettingsDep = Annotated[LedgerSettings, Depends(settings)]
Connection = Annotated[psycopg.Connection, Depends(connection)]
Regions = Annotated[RegionTable, Depends(regions)]
Methodologies = Annotated[Mapping[MethodologyKey, Methodology], Depends(methodologies)]

Limit = Annotated[int, Query(ge=1, le=500)]
Before = Annotated[int | None, Query(ge=1, description="page: postings with seq below this")]
