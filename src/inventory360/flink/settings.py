"""Settings of the Flink job: the engine's ``Settings`` plus ``kafka:`` and ``flink:`` sections.

The engine's :class:`~inventory360.config.Settings` forbids unknown sections, so the two
sections this module adds are taken out of the YAML file before the rest is handed to
:func:`~inventory360.config.load_settings`; both engines therefore read one file and share
the reserving statuses, the lake path, database, table and bucket count.
``INV360_KAFKA__*`` and ``INV360_FLINK__*`` variables override the file, as for the engine.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError

from inventory360.config import Settings, load_settings
from inventory360.errors import ConfigError


class KafkaSettings(BaseModel):
    """Where the two input topics are (SPEC §1)."""

    bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    deltas_topic: str = Field("inventory_delta", description="Topic of inventory delta JSON messages.")
    orders_topic: str = Field("orders_cdc", description="Topic of Debezium order-line change envelopes.")


class FlinkSettings(BaseModel):
    """How the Flink job runs."""

    parallelism: int = Field(1, ge=1, le=1024, description="parallelism.default of the job.")
    checkpoint_interval_s: float = Field(
        10.0, gt=0, description="Checkpoint interval; each checkpoint is one exactly-once Paimon commit."
    )
    group_id: str = Field("inv360-flink", description="Kafka consumer group (offsets committed on checkpoints).")
    startup_mode: Literal["earliest-offset", "latest-offset", "group-offsets"] = Field(
        "earliest-offset", description="scan.startup.mode of both Kafka sources."
    )
    bounded: bool = Field(False, description="Stop at the offsets that are latest when the job starts.")
    state_backend: Literal["hashmap", "rocksdb"] = Field("hashmap", description="state.backend.type.")
    state_ttl: str | None = Field(
        None, description="table.exec.state.ttl (e.g. '30 d'); None keeps state for ever, as SPEC requires."
    )
    checkpoint_dir: str | None = Field(
        None, description="execution.checkpointing.dir (URI); default LAKE/flink-checkpoints."
    )
    restart_attempts: int = Field(3, ge=0, description="Fixed-delay restarts before the job fails.")
    catalog: str = Field("inv360_lake", description="Name of the Paimon catalog inside the job.")
    job_name: str = Field("inventory360-snapshot", description="pipeline.name.")
    extra: dict[str, str] = Field(default_factory=dict, description="More Flink configuration, verbatim.")


@dataclass(slots=True)
class JobSettings:
    """Everything the Flink job is generated from."""

    settings: Settings
    kafka: KafkaSettings
    flink: FlinkSettings


def _section(model: type[BaseModel], data: dict[str, Any], prefix: str, overrides: dict[str, Any]) -> Any:
    values = dict(data)
    for key, value in os.environ.items():
        if key.upper().startswith(prefix):
            values[key[len(prefix) :].lower()] = value
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid setting {prefix[7:-2].lower()}.{where}: {first['msg']}") from exc


def load_job_settings(
    path: Path | None = None,
    *,
    kafka: dict[str, Any] | None = None,
    flink: dict[str, Any] | None = None,
    **engine_overrides: Any,
) -> JobSettings:
    """Settings from an optional YAML file, the environment, then explicit overrides.

    ``kafka``/``flink`` override fields of those sections (None values are ignored);
    ``engine_overrides`` are passed to :func:`load_settings` (``lake__path=…`` style).
    Raises :class:`ConfigError` on an unreadable file or an invalid value.
    """
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
        data = dict(loaded or {})
    kafka_data = data.pop("kafka", None) or {}
    flink_data = data.pop("flink", None) or {}
    if not isinstance(kafka_data, dict) or not isinstance(flink_data, dict):
        raise ConfigError("the kafka: and flink: sections must be mappings")
    if data:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as tmp:
            yaml.safe_dump(data, tmp)
        try:
            settings = load_settings(Path(tmp.name), **engine_overrides)
        finally:
            os.unlink(tmp.name)
    else:
        settings = load_settings(None, **engine_overrides)
    return JobSettings(
        settings=settings,
        kafka=_section(KafkaSettings, kafka_data, "INV360_KAFKA__", kafka or {}),
        flink=_section(FlinkSettings, flink_data, "INV360_FLINK__", flink or {}),
    )
