"""Executes a plan of :mod:`inventory360.flink.job` inside the Flink virtualenv.

Run as a script by :mod:`inventory360.flink.runner` with the Flink venv's Python (it
imports only ``pyflink`` and the standard library, not ``inventory360``)::

    python _pyflink_main.py PLAN.json

The plan is ``{"mode": "streaming"|"batch", "config": {...}, "jars": [...],
"statements": [...], "insert": "..." | null, "queries": [...], "wait": bool}``.
Statements run in order; then the INSERT is submitted (and waited for when ``wait``);
``queries`` are run after it and their rows printed as JSON lines (used by maintenance
procedures). On success the last stdout line is ``{"job_id": …, "status": …}``.
Excluded from mypy: pyflink is not installed in the main environment.
"""

from __future__ import annotations

import json
import sys
import time


def main(path: str) -> int:
    """Run the plan at ``path``; exit code 0 on success."""
    from pyflink.common import Configuration
    from pyflink.table import EnvironmentSettings, TableEnvironment

    with open(path) as f:
        plan = json.load(f)
    conf = Configuration()
    for key, value in plan.get("config", {}).items():
        conf.set_string(key, str(value))
    jars = plan.get("jars") or []
    if jars:
        conf.set_string("pipeline.jars", ";".join("file://" + j for j in jars))
    builder = EnvironmentSettings.new_instance().with_configuration(conf)
    builder = builder.in_batch_mode() if plan.get("mode") == "batch" else builder.in_streaming_mode()
    tenv = TableEnvironment.create(builder.build())
    for stmt in plan.get("statements", []):
        tenv.execute_sql(stmt)
    status = {"job_id": None, "status": "NO_JOB"}
    if plan.get("insert"):
        started = time.monotonic()
        result = tenv.execute_sql(plan["insert"])
        client = result.get_job_client()
        job_id = str(client.get_job_id()) if client is not None else None
        print(json.dumps({"submitted": job_id}), flush=True)
        status = {"job_id": job_id, "status": "SUBMITTED"}
        if plan.get("wait", True):
            result.wait()
            status = {"job_id": job_id, "status": "FINISHED", "seconds": round(time.monotonic() - started, 3)}
    for query in plan.get("queries", []):
        with tenv.execute_sql(query).collect() as rows:
            for row in rows:
                print(json.dumps({"query": query, "row": [str(x) for x in row]}), flush=True)
    print(json.dumps(status), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
