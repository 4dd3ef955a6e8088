"""Settings of the Flink job: the engine's own ``Settings`` with its kafka and flink sections.

Both engines read one file (and ``INV360_*`` variables), so they share the reserving
statuses, the lake path, database, table and bucket count.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inventory360.config import FlinkSettings, KafkaSettings, Settings, load_settings

__all__ = ["FlinkSettings", "JobSettings", "KafkaSettings", "load_job_settings"]


@dataclass(slots=True)
class JobSettings:
    """Everything the Flink job is generated from."""

    settings: Settings
    kafka: KafkaSettings
    flink: FlinkSettings


def load_job_settings(
    path: Path | None = None,
    *,
    kafka: dict[str, Any] | None = None,
    flink: dict[str, Any] | None = None,
    **engine_overrides: Any,
) -> JobSettings:
    """Settings from an optional YAML file, the environment, then explicit overrides.

    ``kafka``/``flink`` override fields of those sections (None values are ignored);
    ``engine_overrides`` use :func:`load_settings`'s ``section__field=…`` style.
    Raises :class:`~inventory360.errors.ConfigError` on an unreadable file or a bad value.
    """
    overrides = dict(engine_overrides)
    for section, values in (("kafka", kafka), ("flink", flink)):
        overrides.update({f"{section}__{k}": v for k, v in (values or {}).items() if v is not None})
    settings = load_settings(path, **overrides)
    return JobSettings(settings=settings, kafka=settings.kafka, flink=settings.flink)
