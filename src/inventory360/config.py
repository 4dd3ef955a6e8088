"""Settings: defaults < YAML file (``--config``) < ``INV360_*`` environment variables.

Nested fields use ``__`` in variable names, e.g. ``INV360_ENGINE__LATE_AFTER_MS=5000``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, Discriminator, Field, SecretStr, Tag, ValidationError, field_validator
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

    batch_mb: float = Field(64.0, gt=0, description="Bytes read per source per micro-batch (MiB).")
    checkpoint_interval_s: float = Field(
        1.0,
        ge=0,
        description="Under a backlog, seconds between checkpoints (lake commits); a caught-up "
        "pipeline checkpoints every batch. 0: every batch.",
    )


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


class KafkaSourcesSettings(BaseModel):
    """Inputs of ``inv360 run`` read from Kafka; offsets live only in the engine checkpoint."""

    type: Literal["kafka"] = "kafka"
    bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    deltas_topic: str | None = Field("inventory_delta", description="Topic of inventory deltas (None: none).")
    orders_topic: str | None = Field("orders_cdc", description="Topic of Debezium order-line changes (None: none).")
    poll_timeout_s: float = Field(0.2, gt=0, description="How long an idle read waits for messages.")
    client: dict[str, str] = Field(default_factory=dict, description="Extra librdkafka consumer settings.")


class BinlogSourcesSettings(BaseModel):
    """Order-line changes read straight from the MariaDB/MySQL binlog (no Kafka Connect), deltas from files or Kafka."""

    type: Literal["binlog"] = "binlog"
    host: str = Field("127.0.0.1", description="Database host.")
    port: int = Field(3306, ge=1, le=65535)
    user: str = Field("cdc", description="User with REPLICATION SLAVE/CLIENT and BINLOG MONITOR.")
    password: SecretStr = Field(SecretStr("cdc"), description="Its password (INV360_SOURCES__PASSWORD).")
    schema_name: str = Field("shop", alias="schema", description="Database of the order-line table.")
    table: str = Field("order_lines", description="The order-line table.")
    server_id: int = Field(36_036, ge=1, description="Replica server id of this reader (unique per server).")
    is_mariadb: bool = Field(True, description="MariaDB (GTID flavour) rather than MySQL.")
    deltas: list[Path] = Field(default_factory=list, description="Inventory delta files (tailed).")
    deltas_bootstrap: str | None = Field(None, description="Kafka bootstrap for deltas_topic.")
    deltas_topic: str | None = Field(None, description="Kafka topic of inventory deltas.")

    model_config = {"populate_by_name": True}


def _source_type(v: Any) -> str:
    """``type`` of a sources mapping; ``files`` when absent (older configuration files)."""
    if isinstance(v, dict):
        return str(v.get("type", "files"))
    return str(getattr(v, "type", "files"))


SourcesSettings = Annotated[
    Annotated[FileSourcesSettings, Tag("files")]
    | Annotated[KafkaSourcesSettings, Tag("kafka")]
    | Annotated[BinlogSourcesSettings, Tag("binlog")],
    Discriminator(_source_type),
]


class SqliteProjectionSettings(BaseModel):
    """The serving projection in ``LAKE/projection.sqlite`` (embedded, the default)."""

    type: Literal["sqlite"] = "sqlite"


class CassandraProjectionSettings(BaseModel):
    """The serving projection in Cassandra (table as in ``services/cassandra/schema.cql``, created if missing)."""

    type: Literal["cassandra"] = "cassandra"
    hosts: list[str] = Field(default_factory=lambda: ["127.0.0.1"], description="Contact points.")
    port: int = Field(9042, ge=1, le=65535, description="CQL native port.")
    keyspace: str = Field("supply", pattern=r"^[A-Za-z0-9_]{1,48}$", description="Keyspace (must exist).")
    table: str = Field("inventory_projection", pattern=r"^[A-Za-z0-9_]{1,40}$", description="Projection table.")
    local_dc: str | None = Field(None, description="Local datacenter of the token-aware policy (None: guessed).")
    username: str | None = Field(None, description="PlainText auth user (None: no auth).")
    password: SecretStr | None = Field(None, description="PlainText auth password.")
    consistency: Literal["ONE", "LOCAL_ONE", "QUORUM", "LOCAL_QUORUM", "ALL"] = Field(
        "LOCAL_QUORUM", description="Consistency of writes and reads."
    )
    request_timeout_s: float = Field(10.0, gt=0, description="Per-request timeout; writes retry after it.")


ProjectionSettings = Annotated[SqliteProjectionSettings | CassandraProjectionSettings, Field(discriminator="type")]


class PublishSettings(BaseModel):
    """Copies of alerts and dead letters on Kafka (checkpoint-driven, at least once; dedupe keys in the messages)."""

    bootstrap: str | None = Field(None, description="Kafka bootstrap servers (None: publish nothing).")
    alerts_topic: str | None = Field(None, description="Topic for LOW/RECOVERED alerts (e.g. inventory_alerts).")
    dead_letters_topic: str | None = Field(None, description="Topic for dead letters (e.g. inventory_dlq).")


class AlertmanagerSettings(BaseModel):
    """The Alertmanager webhook receiver (``POST /alertmanager``) that forwards firing alerts to Kafka."""

    enabled: bool = Field(False, description="Serve the webhook (needs publish.bootstrap and a topic).")
    host: str = Field("127.0.0.1", description="Bind address.")
    port: int = Field(8361, ge=0, le=65535, description="Port (0: any free one).")
    topic: str | None = Field(None, description="Kafka topic [default: publish.alerts_topic].")
    forward_resolved: bool = Field(False, description="Forward resolved notifications too (not only firing).")


class KafkaSettings(BaseModel):
    """Where the Flink job reads the two input topics (SPEC §1)."""

    bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    deltas_topic: str = Field("inventory_delta", description="Topic of inventory delta JSON messages.")
    orders_topic: str = Field("orders_cdc", description="Topic of Debezium order-line change envelopes.")


class FlinkSettings(BaseModel):
    """How the Flink job (``inv360 flink``) runs."""

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


class Settings(BaseSettings):
    """All settings of an inventory360 process."""

    model_config = SettingsConfigDict(env_prefix="INV360_", env_nested_delimiter="__", extra="forbid")

    engine: EngineSettings = Field(default_factory=lambda: EngineSettings())
    lake: LakeSettings = Field(default_factory=lambda: LakeSettings())
    run: RunSettings = Field(default_factory=lambda: RunSettings())
    alerts: AlertSettings = Field(default_factory=lambda: AlertSettings())
    api: ApiSettings = Field(default_factory=lambda: ApiSettings())
    sources: SourcesSettings = Field(default_factory=lambda: FileSourcesSettings())
    projection: ProjectionSettings = Field(default_factory=lambda: SqliteProjectionSettings())
    publish: PublishSettings = Field(default_factory=lambda: PublishSettings())
    alertmanager: AlertmanagerSettings = Field(default_factory=lambda: AlertmanagerSettings())
    kafka: KafkaSettings = Field(default_factory=lambda: KafkaSettings())
    flink: FlinkSettings = Field(default_factory=lambda: FlinkSettings())

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
    except ValidationError as exc:
        raise _config_error(exc, "") from exc
    for dotted, value in overrides.items():
        # Command-line values beat everything; sections are re-validated alone.
        section, _, name = dotted.partition("__")
        part = getattr(settings, section)
        try:
            setattr(settings, section, type(part).model_validate({**part.model_dump(), name: value}))
        except ValidationError as exc:
            raise _config_error(exc, f"{section}.") from exc
    return settings


def _config_error(exc: ValidationError, prefix: str) -> ConfigError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return ConfigError(f"invalid setting {prefix}{where}: {first['msg']}")
