"""Readiness probe and schema bootstrap for the local Cassandra node (used by services/svc).

    python cql_ready.py HOST PORT TIMEOUT_S [SCHEMA.cql]

Polls until `SELECT release_version FROM system.local` answers, then (optionally) runs the
`;`-separated statements of SCHEMA.cql. Prints the release version. Exit 1 when the node did
not answer in time, 2 when a schema statement failed.
"""

from __future__ import annotations

import logging
import sys
import time


def _statements(path: str) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        lines = [ln for ln in fh.read().splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def main() -> int:
    """Poll, bootstrap the schema, print the release version; return the exit code."""
    host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    schema = sys.argv[4] if len(sys.argv) > 4 else None
    logging.basicConfig(level=logging.CRITICAL)
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile  # type: ignore[import-untyped]
    from cassandra.policies import WhiteListRoundRobinPolicy  # type: ignore[import-untyped]

    profile = ExecutionProfile(
        load_balancing_policy=WhiteListRoundRobinPolicy([host]), request_timeout=60
    )

    deadline = time.monotonic() + timeout
    last_err: Exception | None = None
    while True:
        cluster = Cluster(
            [host],
            port=port,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            connect_timeout=3,
            control_connection_timeout=3,
        )
        try:
            session = cluster.connect()
            version = session.execute("SELECT release_version FROM system.local").one()[0]
        except Exception as exc:
            cluster.shutdown()
            last_err = exc
            if time.monotonic() >= deadline:
                print(f"cassandra not ready after {timeout:.0f}s: {last_err}", file=sys.stderr)
                return 1
            time.sleep(0.5)
            continue
        try:
            for stmt in _statements(schema) if schema else []:
                session.execute(stmt, timeout=60)
        except Exception as exc:
            print(f"schema statement failed: {exc}", file=sys.stderr)
            return 2
        finally:
            cluster.shutdown()
        print(version)
        return 0


if __name__ == "__main__":
    sys.exit(main())
