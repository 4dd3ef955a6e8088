"""One error hierarchy for inventory360.

Bad *records* are never exceptions: decoders return them as dead letters (data, not
control flow). Exceptions are for the pipeline itself::

    Inv360Error                      base; carries an exit code for the CLI
    ├── ConfigError                  bad options or settings (exit 2)
    ├── SourceError                  a source cannot be read (exit 3)
    ├── CheckpointError              state on disk is missing, corrupt or foreign (exit 4)
    ├── SinkError                    a sink failed
    │   ├── TransientSinkError       worth retrying (server down, timeout)
    │   └── TerminalSinkError        retrying cannot help (schema mismatch, auth)
    └── StateError                   an engine invariant broke (a bug: exit 70)
"""

from __future__ import annotations


class Inv360Error(Exception):
    """Base class of every error the project raises on purpose."""

    exit_code = 1


class ConfigError(Inv360Error):
    """Invalid command-line options, settings or configuration files."""

    exit_code = 2


class SourceError(Inv360Error):
    """A source cannot be opened or read."""

    exit_code = 3


class CheckpointError(Inv360Error):
    """Checkpoint state is missing, corrupt, or belongs to another pipeline."""

    exit_code = 4


class SinkError(Inv360Error):
    """A sink could not accept or commit a batch."""

    exit_code = 5


class TransientSinkError(SinkError):
    """A sink failure that may succeed when retried (the caller decides when)."""


class TerminalSinkError(SinkError):
    """A sink failure that retrying cannot fix."""


class StateError(Inv360Error):
    """An internal invariant of the engine was violated."""

    exit_code = 70
