"""Prometheus metrics of the pipeline and the API (names ``inv360_<noun>_<unit>``).

Low cardinality by construction: labels are the input kind (``deltas``/``orders``), the
dead-letter reason (a fixed set of decoder messages, capped), and the API route template.
Counters mirror ``Pipeline.counters``, which are restored from the checkpoint, so they
stay monotonic across restarts. The names used by ``ops/prometheus/rules.yml``:
``inv360_freshness_seconds``, ``inv360_source_lag_events{source}``,
``inv360_dead_letters_total{reason}``, ``inv360_keys_below_safety_stock``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from inventory360.pipeline import Pipeline, StepStats

_MAX_REASONS = 64
_BATCH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def new_registry() -> CollectorRegistry:
    """A registry of our own (never the process-global default)."""
    return CollectorRegistry(auto_describe=True)


class _CounterCollector(Collector):
    """Exposes a snapshot of the pipeline counters taken after each commit."""

    def __init__(self) -> None:
        self.counters: dict[str, int] = {}
        self.lag: dict[str, float] = {}
        self.keys = 0

    def collect(self) -> Iterator[Metric]:
        c = self.counters
        events = CounterMetricFamily("inv360_events_in", "Messages read per input kind.", labels=["source"])
        for kind in ("deltas", "orders"):
            events.add_metric([kind], c.get(f"{kind}_in", 0))
        yield events
        dead = CounterMetricFamily(
            "inv360_dead_letters", "Messages sent to dead letters, by reason.", labels=["reason"]
        )
        reasons = sorted(k.split(":", 1)[1] for k in c if k.startswith("dead_letters:"))
        other = 0
        for i, reason in enumerate(reasons):
            n = c[f"dead_letters:{reason}"]
            if i < _MAX_REASONS:
                dead.add_metric([reason], n)
            else:
                other += n
        if other:
            dead.add_metric(["other"], other)
        yield dead
        yield CounterMetricFamily(
            "inv360_late_events",
            "Deltas accepted more than late_after_ms behind the watermark.",
            c.get("deltas_late", 0),
        )
        yield CounterMetricFamily(
            "inv360_duplicate_events",
            "Deltas ignored as duplicates of an accepted event_id.",
            c.get("deltas_duplicate", 0),
        )
        lag = GaugeMetricFamily(
            "inv360_source_lag_events", "Messages not yet consumed (estimated for files).", labels=["source"]
        )
        for name, v in sorted(self.lag.items()):
            lag.add_metric([name], v)
        yield lag
        yield GaugeMetricFamily("inv360_tracked_keys", "(sku, warehouse) keys in the snapshot.", self.keys)


class PipelineMetrics:
    """An ``on_commit`` hook that feeds the pipeline metrics into ``registry``.

    Call :meth:`attach` once the pipeline is built; it registers the hook.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._counters = _CounterCollector()
        registry.register(self._counters)
        self.batch = Histogram(
            "inv360_batch_duration_seconds",
            "Wall time of one checkpoint, from the start of its first micro-batch to its commits "
            "(one micro-batch once the pipeline has caught up).",
            registry=registry,
            buckets=_BATCH_BUCKETS
        )
        self.commit = Histogram(
            "inv360_commit_duration_seconds",
            "Wall time of the checkpoint and sink commits of one checkpoint.",
            registry=registry,
            buckets=_BATCH_BUCKETS,
        )
        self.checkpoint = Gauge("inv360_checkpoint_id", "Id of the last committed checkpoint.", registry=registry)
        self._pipeline: Pipeline | None = None
        self._bytes_per_line = 400.0
        self._lock = threading.Lock()

    def attach(self, pipeline: Pipeline) -> None:
        """Register as ``on_commit`` hook of ``pipeline`` and take the restored counters."""
        self._pipeline = pipeline
        pipeline.on_commit.append(self)
        self.refresh()

    def __call__(self, stats: StepStats) -> None:
        """The ``on_commit`` hook."""
        self.batch.observe(stats.seconds)
        self.commit.observe(stats.commit_seconds)
        self.checkpoint.set(stats.checkpoint)
        if stats.lines:
            # Running estimate, so byte backlogs of files read as events.
            self._bytes_per_line = 0.9 * self._bytes_per_line + 0.1 * (stats.bytes / stats.lines)
        self.refresh()

    def refresh(self) -> None:
        """Copy counters, key count, lag and low keys (also call it when the pipeline is idle)."""
        p = self._pipeline
        if p is None:
            return
        with self._lock:
            self._counters.counters = dict(p.counters)
            self._counters.keys = len(p.engine.keys)
            lag: dict[str, float] = {}
            for inp in p.inputs:
                b = inp.source.backlog()
                if b is not None:
                    lag[inp.kind] = lag.get(inp.kind, 0.0) + round(b / max(self._bytes_per_line, 1.0))
            self._counters.lag = lag


class ApiMetrics:
    """Request counts and latency per route template; freshness and low keys of the projection."""

    def __init__(
        self,
        registry: CollectorRegistry,
        last_commit_time: Callable[[], float | None],
        low_keys: Callable[[], int],
    ) -> None:
        from prometheus_client import Counter

        self.requests = Counter(
            "inv360_http_requests", "HTTP requests by route and status class.", ["route", "status"], registry=registry
        )
        self.latency = Histogram(
            "inv360_http_request_duration_seconds",
            "HTTP request latency by route.",
            ["route"],
            registry=registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )
        fresh = Gauge(
            "inv360_freshness_seconds",
            "Seconds since the projection was last known current (last commit or idle check).",
            registry=registry,
        )

        def age() -> float:
            t = last_commit_time()
            return float("inf") if t is None else max(0.0, time.time() - t)

        fresh.set_function(age)
        low = Gauge("inv360_keys_below_safety_stock", "Keys below their safety stock.", registry=registry)
        low.set_function(lambda: float(low_keys()))
