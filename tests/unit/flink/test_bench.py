"""``inv360 bench --engines``: delegation, defaults and the comparison table (no Kafka, no Flink)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from inventory360.cli.main import cli
from inventory360.errors import ConfigError
from inventory360.flink import bench


def test_engines_delegates_with_comparison_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(bench, "main", lambda **kw: calls.append(kw))
    out = CliRunner().invoke(cli, ["bench", "--engines", "embedded, flink"])
    assert out.exit_code == 0, out.output
    kw = calls[0]
    assert kw["engines"] == ["embedded", "flink"]
    assert (kw["events"], kw["skus"], kw["warehouses"], kw["bootstrap"], kw["work"]) == (
        200_000,
        5000,
        10,
        "127.0.0.1:9092",
        None,
    )
    out = CliRunner().invoke(
        cli, ["bench", "--engines", "flink", "--events", "1000", "--kafka", "k:1", "--work", str(tmp_path)]
    )
    assert out.exit_code == 0, out.output
    assert (calls[1]["events"], calls[1]["skus"], calls[1]["bootstrap"]) == (1000, 5000, "k:1")
    assert calls[1]["work"] == tmp_path / "engines"


def test_without_engines_the_bench_is_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    import inventory360.benchmark as single

    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(single, "main", lambda *a: calls.append(a))
    monkeypatch.setattr(bench, "main", lambda **kw: pytest.fail("--engines path taken"))
    out = CliRunner().invoke(cli, ["bench", "--events", "10"])
    assert out.exit_code == 0, out.output
    assert calls == [(Path(".cache/bench"), 50_000, 20, 10, 64.0, 1, None, 1.0)]


def test_unknown_engine_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="embedded, flink"):
        bench.main(engines=["spark"])


def test_table_puts_engines_side_by_side_with_ratios() -> None:
    runs = [
        bench.EngineRun("embedded (1 process)", 10.0, None, 500 * 1024, 7, [40.0, 50.0, 60.0, 400.0]),
        bench.EngineRun("Flink, parallelism 1", 40.0, 30.0, 2000 * 1024, 7, [5000.0, 6000.0, 7000.0]),
        bench.EngineRun("Flink, parallelism 2", 50.0, 35.0, 2500 * 1024, 7),
    ]
    text = bench.table(runs, 100_000, 5000, 10, 8, 10.0)
    lines = text.splitlines()
    assert "Flink checkpoints every 10 s" in lines[0]
    assert lines[4] == "| embedded (1 process) | 10,000 | 1.00 | - | - | 500 MiB | 1.0 | 55 ms | 390 ms | 1.0 |"
    assert lines[5] == (
        "| Flink, parallelism 1 | 2,500 | 0.25 | 30.0 | 3,333 | 2,000 MiB | 4.0 | 6.00 s | 6.98 s | 109.1 |"
    )
    assert lines[6].endswith("| 2,500 MiB | 5.0 | - | - | - |")
