"""Shared output of the benchmarks: print the markdown report and keep it in ``docs/bench/<name>.md``
(``bench/run_all.py`` assembles ``docs/benchmarks.md`` from those files)."""

from __future__ import annotations

from pathlib import Path

DOCS_BENCH = Path(__file__).resolve().parents[1] / "docs" / "bench"


def publish(name: str, lines: list[str], *, write: bool = True) -> str:
    """Print ``lines`` joined by newlines; unless ``write`` is False also write ``docs/bench/<name>.md``."""
    text = "\n".join(lines)
    print(text)
    if write:
        DOCS_BENCH.mkdir(parents=True, exist_ok=True)
        (DOCS_BENCH / f"{name}.md").write_text(text, encoding="utf-8")
    return text
