"""JSON Lines file source: whole lines, resumable positions, file identity."""

from __future__ import annotations

from pathlib import Path

from inventory360.sources.files import JsonLinesFileSource


def drain(src: JsonLinesFileSource, max_bytes: int = 7) -> list[bytes]:
    out = []
    while (raw := src.read(max_bytes)) is not None:
        lines = bytes(raw.buf).split(b"\n")[:-1]
        src.lines_decoded(len(lines))
        out += lines
    return out


def test_reads_whole_lines_and_a_last_line_without_newline(tmp_path: Path) -> None:
    p = tmp_path / "f.jsonl"
    p.write_bytes(b"aaaaaaaaaaaa\nb\ncc")
    with JsonLinesFileSource("x", p) as src:
        assert drain(src) == [b"aaaaaaaaaaaa", b"b", b"cc"]  # type: ignore[arg-type]
        assert src.position()["line"] == 3 and src.backlog() == 0


def test_growing_file_resumes_and_replaced_file_restarts(tmp_path: Path) -> None:
    p = tmp_path / "f.jsonl"
    p.write_bytes(b"one\ntwo\n")
    with JsonLinesFileSource("x", p) as first:
        assert drain(first) == [b"one", b"two"]  # type: ignore[arg-type]
        pos = first.position()
    with p.open("ab") as f:
        f.write(b"three\n")
    with JsonLinesFileSource("x", p) as again:
        again.seek(pos)
        assert drain(again) == [b"three"]  # type: ignore[arg-type]
        assert again.position()["line"] == 3
    p.write_bytes(b"other\nfile\n")
    with JsonLinesFileSource("x", p) as replaced:
        replaced.seek(pos)
        assert drain(replaced) == [b"other", b"file"]  # type: ignore[arg-type]


def test_line_positions_for_dead_letters(tmp_path: Path) -> None:
    p = tmp_path / "f.jsonl"
    p.write_bytes(b"a\nbb\nccc\n")
    with JsonLinesFileSource("x", p) as src:
        raw = src.read(1 << 20)
        assert raw is not None
        assert src.line_position(raw, 2) == {"path": str(p.resolve()), "line": 3, "offset": 5}


def test_tailing_waits_for_the_newline(tmp_path: Path) -> None:
    p = tmp_path / "f.jsonl"
    p.write_bytes(b"one\ntw")
    with JsonLinesFileSource("x", p, tail=True) as src:
        assert drain(src) == [b"one"]
        with p.open("ab") as f:
            f.write(b"o\n")
        assert drain(src) == [b"two"]
        assert src.position()["line"] == 2
