"""Quantify settings beyond the shared ones."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from carbonledger.contracts import services
from carbonledger.contracts.settings import Settings


class QuantifySettings(Settings):
    model_config = SettingsConfigDict(env_prefix="CARBON_", env_ignore_empty=True, extra="ignore")

    quantify_web_port: int = services.QUANTIFY.base_port
