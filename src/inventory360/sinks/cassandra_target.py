"""Where the Cassandra projection lives: its table definitions and how to connect.

Shared by the engine's sink (:mod:`inventory360.sinks.cassandra`) and the Flink job's
writer (:mod:`inventory360.flink.projection`); imports only the standard library and
(lazily) the ``cassandra`` driver, so the Flink workers can import it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from inventory360.errors import ConfigError, TerminalSinkError, TransientSinkError

if TYPE_CHECKING:
    from inventory360.config import CassandraProjectionSettings, SqliteProjectionSettings

TABLE_CQL = """CREATE TABLE IF NOT EXISTS {ks}.{table} (
  sku_id text, warehouse_id text, available_qty bigint, reserved_qty bigint, atp_qty bigint,
  updated_at timestamp, commit_id bigint, PRIMARY KEY ((sku_id), warehouse_id))"""
META_CQL = """CREATE TABLE IF NOT EXISTS {ks}.{meta} (
  projection text, writer text, checkpoint bigint, ts_base bigint, committed_at timestamp, current_at timestamp,
  PRIMARY KEY ((projection), writer))"""


log = logging.getLogger(__name__)

T = TypeVar("T")


def is_terminal(exc: BaseException) -> bool:
    """Cassandra rejected the request (schema, syntax, auth): retrying cannot help."""
    from cassandra import AuthenticationFailed, RequestValidationException

    return isinstance(exc, RequestValidationException | AuthenticationFailed)


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return False


def retry(
    what: str,
    fn: Callable[[], T],
    backoff: tuple[float, float],
    *,
    wait: Callable[[float], bool] = _sleep,
    on_retry: Callable[[], None] | None = None,
) -> T:
    """Run ``fn`` until it succeeds, waiting with exponential backoff (``backoff``: first, cap).

    A :class:`ConfigError` is re-raised and a rejection (:func:`is_terminal`) becomes a
    :class:`TerminalSinkError`; any other failure (Cassandra down, timeouts) is logged and
    retried. ``wait(delay)`` returning True means "cancelled": :class:`TransientSinkError`.
    """
    delay, cap = backoff
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            if isinstance(exc, ConfigError):
                raise
            if isinstance(exc, TerminalSinkError) or is_terminal(exc):
                raise TerminalSinkError(f"Cassandra rejected {what}: {exc}") from exc
            attempt += 1
            if on_retry is not None:
                on_retry()
            log.warning(
                "Cassandra %s failed (attempt %d): %s; retrying in %.1fs",
                what,
                attempt,
                str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__,
                delay,
            )
            if wait(delay):
                raise TransientSinkError(f"Cassandra {what} cancelled after {attempt} attempts: {exc}") from exc
            delay = min(delay * 2, cap)


@dataclass(frozen=True, slots=True)
class Statements:
    """The prepared, idempotent statements both writers use."""

    #: ``(sku_id, warehouse_id, available, reserved, atp, updated_at, commit_id, write_ts)``
    insert: Any
    #: ``(write_ts, checkpoint, committed_at_ms, projection, writer)``
    set_checkpoint: Any


class PendingBatches:
    """Batches still to be written, narrowed to the failed ones by each :meth:`send`.

    A retry re-sends just those; every batch is idempotent, so a re-sent one is harmless.
    """

    def __init__(self, batches: list[Any]) -> None:
        self.batches = batches

    def send(self, session: Any, concurrency: int) -> None:
        """Execute the pending batches concurrently; raises the first error when some failed."""
        from cassandra.concurrent import execute_concurrent

        results = execute_concurrent(
            session, [(b, ()) for b in self.batches], concurrency=concurrency, raise_on_first_error=False
        )
        failed = [(b, r) for b, (ok, r) in zip(self.batches, results, strict=True) if not ok]
        self.batches = [b for b, _ in failed]
        if failed:
            raise failed[0][1]


@dataclass(frozen=True, slots=True)
class CassandraTarget:
    """Where the projection lives and how to reach it."""

    hosts: tuple[str, ...] = ("127.0.0.1",)
    port: int = 9042
    keyspace: str = "supply"
    table: str = "inventory_projection"
    local_dc: str | None = None
    username: str | None = None
    password: str | None = None
    request_timeout: float = 10.0
    consistency: str = "LOCAL_QUORUM"
    protocol_version: int = 5

    @property
    def meta_table(self) -> str:
        """Name of the meta table next to the projection table."""
        return f"{self.table}_meta"

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable form (the Flink job plan carries it to the workers)."""
        d = asdict(self)
        d["hosts"] = list(self.hosts)
        return d

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CassandraTarget:
        """Inverse of :meth:`to_json`."""
        return cls(**{**data, "hosts": tuple(data.get("hosts", ("127.0.0.1",)))})

    @classmethod
    def from_settings(cls, p: SqliteProjectionSettings | CassandraProjectionSettings) -> CassandraTarget | None:
        """The target of the ``projection:`` settings (None for the SQLite projection)."""
        if p.type != "cassandra":
            return None
        return cls(
            hosts=tuple(p.hosts),
            port=p.port,
            keyspace=p.keyspace,
            table=p.table,
            local_dc=p.local_dc,
            username=p.username,
            password=None if p.password is None else p.password.get_secret_value(),
            request_timeout=p.request_timeout_s,
            consistency=p.consistency,
        )

    def prepare(self, session: Any) -> Statements:
        """Create the projection and meta tables when missing and prepare :class:`Statements`."""
        session.execute(TABLE_CQL.format(ks=self.keyspace, table=self.table), timeout=60)
        session.execute(META_CQL.format(ks=self.keyspace, meta=self.meta_table), timeout=60)
        st = Statements(
            session.prepare(
                f"INSERT INTO {self.keyspace}.{self.table} (sku_id, warehouse_id, available_qty, reserved_qty,"
                " atp_qty, updated_at, commit_id) VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
            ),
            session.prepare(
                f"UPDATE {self.keyspace}.{self.meta_table} USING TIMESTAMP ? SET checkpoint = ?, committed_at = ?"
                " WHERE projection = ? AND writer = ?"
            ),
        )
        st.insert.is_idempotent = st.set_checkpoint.is_idempotent = True
        return st

    def connect(self, timeout: float | None = None) -> tuple[Any, Any]:
        """A new ``(cluster, session)``: token-aware over DC-aware round robin, fast reconnection."""
        from cassandra import ConsistencyLevel
        from cassandra.auth import PlainTextAuthProvider
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import DCAwareRoundRobinPolicy, ExponentialReconnectionPolicy, TokenAwarePolicy

        for name in (self.keyspace, self.table):
            if not name.replace("_", "").isalnum():
                raise ConfigError(f"invalid Cassandra identifier {name!r} (letters, digits and _ only)")
        profile = ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=self.local_dc)),
            request_timeout=timeout or self.request_timeout,
            consistency_level=getattr(ConsistencyLevel, self.consistency),
        )
        auth = PlainTextAuthProvider(self.username, self.password or "") if self.username is not None else None
        cluster = Cluster(
            list(self.hosts),
            port=self.port,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            reconnection_policy=ExponentialReconnectionPolicy(0.5, 5.0),
            auth_provider=auth,
            protocol_version=self.protocol_version,
            connect_timeout=5,
            control_connection_timeout=5,
        )
        try:
            session = cluster.connect()
        except BaseException:
            cluster.shutdown()
            raise
        return cluster, session
