"""Durable engine checkpoints: a manifest per checkpoint plus Arrow segment files.

Layout under the state folder::

    manifest-00000042.json   the commit point (written to a temp file, fsynced, renamed)
    base-00000040-keys.arrow full state as of checkpoint 40 (keys, lines, event ids)
    seg-00000041-keys.arrow  rows changed by checkpoint 41, and so on

A checkpoint exists once its manifest is renamed into place; segment files are written
and fsynced before that, so a manifest never names a missing file. Restoring reads the
newest manifest, its base, then its segments in order. When the segments outgrow the
base, a new base is written and older files are deleted.

Event ids are only ever added, so they are not rewritten with the base: the manifest
lists its event-id files (``event_files``: the newest base that holds all ids, then
the segments after it) and a new base of event ids is written only when that list grows
past :data:`EVENT_FILES_MAX`. A base rewrite therefore costs the keys and order lines,
not the ever-growing set of ids.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.ipc as ipc

from inventory360.errors import CheckpointError

#: The parts a base rewrite writes; event ids have their own files (see above).
STATE_PARTS = ("keys", "lines")
FORMAT_VERSION = 1
#: Event-id files a manifest may list before they are merged into one.
EVENT_FILES_MAX = 64


@dataclass(slots=True)
class Manifest:
    """Everything needed to resume: positions, counters and the state files to load."""

    checkpoint: int = 0
    pipeline_id: str = ""
    base: int = 0
    segments: list[int] = field(default_factory=list)
    positions: dict[str, Any] = field(default_factory=dict)
    dead_letters_bytes: int = 0
    watermark_ms: int | None = None
    key_count: int = 0
    line_count: int = 0
    event_id_count: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    #: ``[kind, checkpoint]`` of each event-id file, oldest first; None in manifests
    #: written before event ids had their own files (then: the base and the segments).
    event_files: list[list[Any]] | None = None

    def events(self) -> list[tuple[str, int]]:
        """The event-id files to load, in order."""
        if self.event_files is None:
            return [("base", self.base), *(("seg", s) for s in self.segments)]
        return [(str(kind), int(num)) for kind, num in self.event_files]

    def to_json(self) -> bytes:
        """Serialised form (with a format version)."""
        data = {"format": FORMAT_VERSION}
        data.update({k: getattr(self, k) for k in self.__slots__})
        return orjson.dumps(data, option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        """Parse a manifest written by :meth:`to_json`."""
        data = orjson.loads(raw)
        if data.pop("format", None) != FORMAT_VERSION:
            raise CheckpointError("checkpoint manifest has an unknown format version")
        return cls(**data)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class CheckpointStore:
    """Reads and writes checkpoints in one folder (one engine owns it)."""

    def __init__(self, folder: Path, keep: int = 2) -> None:
        self.folder = folder
        self.keep = keep
        folder.mkdir(parents=True, exist_ok=True)

    def _manifests(self) -> list[int]:
        ids = []
        for p in self.folder.glob("manifest-*.json"):
            with contextlib.suppress(ValueError):
                ids.append(int(p.stem.split("-")[1]))
        return sorted(ids)

    def latest(self) -> Manifest | None:
        """The newest complete checkpoint, or None for a fresh folder."""
        ids = self._manifests()
        if not ids:
            return None
        path = self.folder / f"manifest-{ids[-1]:08d}.json"
        try:
            return Manifest.from_json(path.read_bytes())
        except (OSError, ValueError, TypeError) as exc:
            raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc

    def file(self, kind: str, checkpoint: int, part: str) -> Path:
        """Path of a base or segment file."""
        return self.folder / f"{kind}-{checkpoint:08d}-{part}.arrow"

    def write_part(self, kind: str, checkpoint: int, part: str, table: pa.Table) -> None:
        """Write and fsync one state file."""
        path = self.file(kind, checkpoint, part)
        with path.open("wb") as f:
            with ipc.new_file(f, table.schema) as writer:
                writer.write_table(table)
            f.flush()
            os.fsync(f.fileno())

    def read_part(self, kind: str, checkpoint: int, part: str) -> pa.Table:
        """Read one state file."""
        path = self.file(kind, checkpoint, part)
        try:
            with ipc.open_file(pa.memory_map(str(path))) as reader:
                return reader.read_all()
        except (OSError, pa.ArrowInvalid) as exc:
            raise CheckpointError(f"checkpoint file {path} is missing or corrupt") from exc

    def commit(self, manifest: Manifest) -> None:
        """Publish ``manifest`` atomically, then drop files no kept manifest needs."""
        final = self.folder / f"manifest-{manifest.checkpoint:08d}.json"
        tmp = final.with_suffix(".tmp")
        with tmp.open("wb") as f:
            f.write(manifest.to_json())
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(final)
        _fsync_dir(self.folder)
        self._collect(manifest)

    def _collect(self, newest: Manifest) -> None:
        ids = self._manifests()
        for old in ids[: -self.keep]:
            (self.folder / f"manifest-{old:08d}.json").unlink(missing_ok=True)
        needed: set[tuple[str, int, str]] = set()
        for mid in ids[-self.keep :]:
            m = newest if mid == newest.checkpoint else self._load_quiet(mid)
            if m is None:
                continue
            for part in STATE_PARTS:
                needed.add(("base", m.base, part))
                needed.update(("seg", s, part) for s in m.segments)
            needed.update((kind, num, "events") for kind, num in m.events())
        for p in self.folder.glob("*.arrow"):
            kind, num, part = p.stem.split("-", 2)
            if (kind, int(num), part) not in needed and int(num) <= newest.checkpoint:
                p.unlink(missing_ok=True)

    def _load_quiet(self, mid: int) -> Manifest | None:
        try:
            return Manifest.from_json((self.folder / f"manifest-{mid:08d}.json").read_bytes())
        except (OSError, ValueError, TypeError, CheckpointError):
            return None
