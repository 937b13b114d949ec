"""Dedupe settings beyond the shared ones."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from carbonledger.contracts import services
from carbonledger.contracts.settings import Settings


class DedupeSettings(Settings):
    model_config = SettingsConfigDict(env_prefix="CARBON_", env_ignore_empty=True, extra="ignore")

    dedupe_web_port: int = services.DEDUPE.base_port
