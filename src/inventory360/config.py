"""Settings: defaults < YAML file (``--config``) < ``INV360_*`` environment variables.

Nested fields use ``__`` in variable names, e.g. ``INV360_ENGINE__LATE_AFTER_MS=5000``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from inventory360.errors import ConfigError


class EngineSettings(BaseModel):
    """Semantics of the snapshot (SPEC §2)."""

    reserving_statuses: list[str] = Field(
        default_factory=lambda: ["CREATED", "ALLOCATED"],
        description="Order-line statuses that reserve stock (compared trimmed, case-insensitively).",
    )
    late_after_ms: int = Field(
        10_000,
        ge=0,
        description="A delta this far behind the watermark is counted as late (never dropped).",
    )

    @field_validator("reserving_statuses")
    @classmethod
    def _upper(cls, v: list[str]) -> list[str]:
        out = [s.strip().upper() for s in v if s.strip()]
        if not out:
            raise ValueError("at least one reserving status is needed")
        return out


class LakeSettings(BaseModel):
    """Where and how the snapshot table is stored."""

    database: str = Field("inventory360", description="Paimon database of the snapshot table.")
    table: str = Field("inventory_snapshot", description="Paimon table name.")
    bucket: int = Field(8, ge=1, le=1024, description="Fixed bucket count of the primary-key table.")
    path: Path | None = Field(None, description="Folder of lake, state, projection and alerts (inv360 run).")


class RunSettings(BaseModel):
    """Micro-batching."""

    batch_mb: float = Field(64.0, gt=0, description="Bytes read per source per micro-batch (MiB); one checkpoint each.")


class AlertSettings(BaseModel):
    """Low-stock alerts (SPEC §3)."""

    safety_stock_file: Path | None = Field(None, description="CSV with sku_id,warehouse_id,safety_stock.")
    default_safety_stock: int = Field(10, ge=0, description="Safety stock of keys not in the file.")
    compare: str = Field("available", pattern="^(available|atp)$", description="available_qty or atp_qty.")


class ApiSettings(BaseModel):
    """HTTP API and dashboard."""

    host: str = Field("127.0.0.1", description="Bind address (loopback by default).")
    port: int = Field(8360, ge=1, le=65535)
    token: SecretStr | None = Field(None, description="Bearer token for /v1 routes (INV360_API__TOKEN).")
    ready_max_staleness_s: float = Field(
        60.0, gt=0, description="/readyz fails when the projection was last known current longer ago than this."
    )


class FileSourcesSettings(BaseModel):
    """Inputs of ``inv360 run``: JSON Lines files, tailed as they grow."""

    type: Literal["files"] = "files"
    deltas: list[Path] = Field(default_factory=list, description="Inventory delta files.")
    orders: list[Path] = Field(default_factory=list, description="Debezium order-line change files.")


class Settings(BaseSettings):
    """All settings of an inventory360 process."""

    model_config = SettingsConfigDict(env_prefix="INV360_", env_nested_delimiter="__", extra="forbid")

    engine: EngineSettings = Field(default_factory=lambda: EngineSettings())
    lake: LakeSettings = Field(default_factory=lambda: LakeSettings())
    run: RunSettings = Field(default_factory=lambda: RunSettings())
    alerts: AlertSettings = Field(default_factory=lambda: AlertSettings())
    api: ApiSettings = Field(default_factory=lambda: ApiSettings())
    sources: FileSourcesSettings = Field(default_factory=lambda: FileSourcesSettings())

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment variables beat the YAML file (passed as init values)."""
        return env_settings, init_settings


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Settings from an optional YAML file, the environment, then explicit overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping")
        data = loaded or {}
    try:
        settings = Settings(**data)
        for dotted, value in overrides.items():
            # Command-line values beat everything; sections are re-validated alone.
            section, _, name = dotted.partition("__")
            part = getattr(settings, section)
            setattr(settings, section, type(part).model_validate({**part.model_dump(), name: value}))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from exc
    return settings
