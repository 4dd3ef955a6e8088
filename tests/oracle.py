"""A deliberately plain, event-at-a-time implementation of SPEC §1-§2 for tests.

It shares nothing with the engine but the decoders' row format, so agreement between
the two is evidence, not tautology.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RESERVING = frozenset({"CREATED", "ALLOCATED"})


@dataclass
class Oracle:
    reserving: frozenset[str] = RESERVING
    available: dict[tuple[str, str], int] = field(default_factory=dict)
    updated: dict[tuple[str, str], int] = field(default_factory=dict)
    lines: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    seen_ids: set[str] = field(default_factory=set)

    def _touch(self, key: tuple[str, str], when: int) -> None:
        self.available.setdefault(key, 0)
        self.updated[key] = max(self.updated.get(key, when), when)

    def delta(self, row: dict[str, Any]) -> None:
        eid = row.get("event_id")
        if eid is not None:
            if eid in self.seen_ids:
                return
            self.seen_ids.add(eid)
        key = (row["sku_id"], row["warehouse_id"])
        self._touch(key, row["event_time"])
        self.available[key] += row["available_delta"]

    def order(self, row: dict[str, Any]) -> None:
        ident = (row["order_id"], row["line_no"])
        last = self.lines.get(ident)
        pos = (row["pos_file"], row["pos"], row["pos_row"]) if row["has_pos"] else None
        if last is not None and pos is not None and last["pos"] is not None and pos < last["pos"]:
            return
        when = row["change_time"]
        prev_key = last["key"] if last is not None and last["live"] else None
        if row["op"] == "d":
            if prev_key is not None:
                self._touch(prev_key, when)
            elif row.get("before_sku_id") and row.get("before_warehouse_id"):
                self._touch((row["before_sku_id"], row["before_warehouse_id"]), when)
            self.lines[ident] = {"pos": pos, "live": False, "key": None}
            return
        key = (row["sku_id"], row["warehouse_id"])
        if prev_key is not None and prev_key != key:
            self._touch(prev_key, when)
        self._touch(key, when)
        self.lines[ident] = {
            "pos": pos,
            "live": True,
            "key": key,
            "qty": row["quantity"],
            "reserving": row["status"] in self.reserving,
        }

    def snapshot(self) -> list[tuple[str, str, int, int, int]]:
        reserved: dict[tuple[str, str], int] = {}
        for line in self.lines.values():
            if line["live"] and line["reserving"]:
                reserved[line["key"]] = reserved.get(line["key"], 0) + line["qty"]
        return sorted((k[0], k[1], self.available[k], reserved.get(k, 0), self.updated[k]) for k in self.available)
