"""The retry loop and the pending batches both Cassandra writers share."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cassandra import AuthenticationFailed, Unavailable

from inventory360.errors import ConfigError, TerminalSinkError, TransientSinkError
from inventory360.sinks.cassandra_target import retry


def flaky(failures: list[BaseException]) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return "done"

    return calls, fn


def test_transient_failures_are_retried_with_backoff_and_counted() -> None:
    calls, fn = flaky([Unavailable("down"), OSError("refused")])
    waits: list[float] = []
    counted: list[int] = []

    def wait(delay: float) -> bool:
        waits.append(delay)
        return False

    got = retry("write", fn, (0.1, 0.15), wait=wait, on_retry=lambda: counted.append(1))
    assert got == "done" and len(calls) == 3 and len(counted) == 2
    assert waits == [0.1, 0.15]  # doubled, capped


def test_rejections_and_config_errors_are_not_retried() -> None:
    for exc, kind in ((AuthenticationFailed("bad password"), TerminalSinkError), (ConfigError("bad id"), ConfigError)):
        calls, fn = flaky([exc])
        with pytest.raises(kind):
            retry("connect", fn, (0.01, 0.01), wait=lambda d: False)
        assert len(calls) == 1


def test_a_cancelled_wait_gives_up_as_transient() -> None:
    calls, fn = flaky([Unavailable("down")] * 5)
    with pytest.raises(TransientSinkError, match="cancelled after 1 attempts"):
        retry("write", fn, (0.01, 0.01), wait=lambda d: True)
    assert len(calls) == 1
