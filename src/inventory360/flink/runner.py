"""Runs generated Flink plans with the Flink virtualenv's Python, as a subprocess.

The Flink environment (``apache-flink==2.2.1`` and the connector jars) is made by
``services/flink/setup.sh`` at ``INV360_FLINK_VENV`` / ``INV360_FLINK_LIB`` (defaults under
``~/.cache/inventory360``). :func:`run_plan` never imports pyflink here: it writes the plan
as JSON and runs :mod:`inventory360.flink._pyflink_main` there. A missing environment is a
:class:`~inventory360.errors.ConfigError` naming the set-up script; a failed job is a
:class:`~inventory360.errors.SinkError` carrying the end of its output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inventory360.errors import ConfigError, SinkError

REPO = Path(__file__).resolve().parents[3]
SETUP = REPO / "services" / "flink" / "setup.sh"
MAIN = Path(__file__).with_name("_pyflink_main.py")


def flink_venv() -> Path:
    """Folder of the Flink virtualenv."""
    return Path(os.environ.get("INV360_FLINK_VENV", Path.home() / ".cache/inventory360/flink-venv"))


def flink_lib() -> Path:
    """Folder of the connector jars."""
    return Path(os.environ.get("INV360_FLINK_LIB", Path.home() / ".cache/inventory360/flink-lib"))


def ensure_environment(setup: bool = False) -> tuple[Path, list[Path]]:
    """The venv's python and the connector jars; runs ``setup.sh`` first when ``setup``.

    Raises :class:`ConfigError` when the environment is missing (and not set up here).
    """
    if setup:
        if not SETUP.exists():
            raise ConfigError(f"no {SETUP}: run from a checkout of the repository")
        done = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ConfigError(f"services/flink/setup.sh failed: {done.stderr.strip()[-2000:]}")
    python = flink_venv() / "bin" / "python"
    jars = sorted(flink_lib().glob("*.jar"))
    if not python.exists() or not (flink_venv() / ".complete").exists():
        raise ConfigError(f"no Flink virtualenv at {flink_venv()}: run services/flink/setup.sh")
    if not (flink_venv() / ".extras").exists():
        raise ConfigError(
            f"the Flink virtualenv at {flink_venv()} lacks the job's packages: run services/flink/setup.sh"
        )
    if len(jars) < 2:
        raise ConfigError(f"no connector jars in {flink_lib()}: run services/flink/setup.sh")
    return python, jars


def java_env() -> dict[str, str]:
    """The environment for the Flink JVM: Java 17 when JAVA_HOME is not set."""
    env = dict(os.environ)
    if "JAVA_HOME" not in env:
        for cand in sorted(Path("/usr/lib/jvm").glob("java-17-openjdk-*")):
            env["JAVA_HOME"] = str(cand)
            break
    return env


@dataclass(slots=True)
class RunResult:
    """What a finished (or submitted) plan reported."""

    returncode: int
    status: dict[str, Any]
    rows: list[list[str]] = field(default_factory=list)
    output: str = ""
    peak_rss_kib: int = 0  # peak summed RSS of the job's process tree (pyflink + JVM), sampled


def run_plan(
    plan: dict[str, Any],
    *,
    setup: bool = False,
    timeout: float | None = None,
    echo: bool = False,
    stop: threading.Event | None = None,
    on_line: Callable[[str], None] | None = None,
) -> RunResult:
    """Execute ``plan`` in the Flink venv; returns when the job finished (or was submitted).

    ``echo`` streams the job's output to stderr while it runs, ``on_line`` gets every line.
    Setting ``stop`` ends an unbounded job: its whole process group (PyFlink client, JVM
    mini-cluster, Python workers) is terminated and the result's status is ``STOPPED``.
    Raises :class:`SinkError` when the job fails or times out.
    """
    python, jars = ensure_environment(setup)
    plan = {**plan, "jars": [str(j) for j in jars]}
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="inv360-flink-", delete=False) as f:
        json.dump(plan, f)
        plan_path = f.name
    lines: list[str] = []
    peak = 0
    stopped = threading.Event()
    try:
        with subprocess.Popen(
            [str(python), str(MAIN), plan_path],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=java_env(),
            start_new_session=True,  # one process group: the JVM and the Python workers end with it
        ) as proc:
            assert proc.stdout is not None

            def end(why: threading.Event) -> None:
                why.set()
                _end_group(proc)

            # The job's output is read to its end, so the time limit is a watchdog that ends it.
            expired = threading.Event()
            watchdog = threading.Timer(timeout, end, (expired,)) if timeout else None
            if stop is not None:

                def wait_for_stop() -> None:
                    while not stop.wait(0.5):
                        if proc.poll() is not None:
                            return
                    end(stopped)

                threading.Thread(target=wait_for_stop, daemon=True).start()
            sampler = _TreeRss(proc.pid)
            sampler.start()
            if watchdog is not None:
                watchdog.start()
            try:
                for line in proc.stdout:
                    lines.append(line.rstrip("\n"))
                    if echo:
                        print(line, end="", file=sys.stderr, flush=True)
                    if on_line is not None:
                        on_line(lines[-1])
                code = proc.wait()
            finally:
                sampler.stop.set()
                sampler.join()
                peak = sampler.peak_kib
                if watchdog is not None:
                    watchdog.cancel()
                _end_group(proc)  # leftover workers of a finished or failed job
            if expired.is_set():
                raise SinkError(f"Flink job did not finish within {timeout} s")
            if stopped.is_set():
                return RunResult(code, {"status": "STOPPED"}, [], "\n".join(lines), peak)
    finally:
        os.unlink(plan_path)
    status: dict[str, Any] = {}
    rows: list[list[str]] = []
    for line in lines:
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if "row" in obj:
                rows.append(obj["row"])
            elif "status" in obj:
                status = obj
    if code != 0 or not status:
        tail = "\n".join(lines[-40:])
        raise SinkError(f"Flink job failed (exit {code}):\n{tail}")
    return RunResult(code, status, rows, "\n".join(lines), peak)


def _end_group(proc: subprocess.Popen[str], grace: float = 10.0) -> None:
    """Terminate the process group of ``proc`` (SIGTERM, then SIGKILL after ``grace`` s)."""
    import signal

    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.1)


class _TreeRss(threading.Thread):
    """Samples the summed RSS of a process and its descendants every 0.2 s (Linux /proc)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.stop = threading.Event()
        self.peak_kib = 0

    def run(self) -> None:
        while not self.stop.wait(0.2):
            self.peak_kib = max(self.peak_kib, _tree_rss_kib(self.pid))


def _tree_rss_kib(root: int) -> int:
    parent: dict[int, int] = {}
    rss: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            parent[int(d.name)] = int(fields[1])
            rss[int(d.name)] = int(fields[21]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
        except (OSError, ValueError, IndexError):
            continue
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        kids = [c for c, p in parent.items() if p == pid and c not in tree]
        tree.update(kids)
        frontier.extend(kids)
    return sum(rss.get(p, 0) for p in tree)
