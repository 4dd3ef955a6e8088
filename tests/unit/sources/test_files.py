"""JSON Lines file source: whole lines, resumable positions, file identity."""

from __future__ import annotations

from pathlib import Path

from inventory360.sources.files import JsonLinesFileSource


def drain(src: JsonLinesFileSource, max_bytes: int = 7) -> list[bytes]:
    out = []
    while (raw := src.read(max_bytes)) is not None:
        lines = raw.buf.split(b"\n")[:-1]
        src.lines_decoded(len(lines))
        out += lines
    return out


def test_reads_whole_lines_and_a_last_line_without_newline(tmp_path: Path) -> None:
    p = tmp_path / "f.jsonl"
    p.write_bytes(b"aaaaaaaaaaaa\nb\ncc")
    src = JsonLinesFileSource("x", p)
    assert drain(src) == [b"aaaaaaaaaaaa", b"b", b"cc"]
    assert src.position()["line"] == 3 and src.backlog() == 0


def test_growing_file_resumes_and_replaced_file_restarts(tmp_path: Path) -> None:
    p = tmp_path / "f.jsonl"
    p.write_bytes(b"one\ntwo\n")
    first = JsonLinesFileSource("x", p)
    assert drain(first) == [b"one", b"two"]
    pos = first.position()
    with p.open("ab") as f:
        f.write(b"three\n")
    again = JsonLinesFileSource("x", p)
    again.seek(pos)
    assert drain(again) == [b"three"]
    assert again.position()["line"] == 3
    p.write_bytes(b"other\nfile\n")
    replaced = JsonLinesFileSource("x", p)
    replaced.seek(pos)
    assert drain(replaced) == [b"other", b"file"]


def test_line_positions_for_dead_letters(tmp_path: Path) -> None:
    p = tmp_path / "f.jsonl"
    p.write_bytes(b"a\nbb\nccc\n")
    src = JsonLinesFileSource("x", p)
    raw = src.read(1 << 20)
    assert raw is not None
    assert src.line_position(raw, 2) == {"path": str(p.resolve()), "line": 3, "offset": 5}
