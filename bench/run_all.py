"""Run every ``bench/bench_*.py`` and rewrite ``docs/benchmarks.md`` from their tables.

Each benchmark prints its figures and writes a markdown section to ``docs/bench/<name>.md``;
this script runs them one after another (never in parallel: the machine has 2 cores and the
figures are ratios measured side by side inside each script) and concatenates the sections.

Usage: ``python bench/run_all.py [--only load,engines] [--skip gradcam]``
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated names (bench_<name>.py)")
    ap.add_argument("--skip", default="", help="comma-separated names to skip")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per benchmark")
    args = ap.parse_args()
    only = {s for s in args.only.split(",") if s}
    skip = {s for s in args.skip.split(",") if s}
    scripts = sorted((ROOT / "bench").glob("bench_*.py"))
    failures: list[str] = []
    for script in scripts:
        name = script.stem.removeprefix("bench_")
        if (only and name not in only) or name in skip:
            continue
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        try:
            r = subprocess.run([sys.executable, str(script)], cwd=ROOT, timeout=args.timeout)
            if r.returncode != 0:
                failures.append(f"{name}: exit code {r.returncode}")
        except subprocess.TimeoutExpired:
            failures.append(f"{name}: timed out after {args.timeout} s")
        print(f"   ({time.perf_counter() - t0:.0f} s)", flush=True)
    write_summary()
    for f in failures:
        print("FAILED", f, file=sys.stderr)
    return 1 if failures else 0


def write_summary() -> None:
    sections = sorted((DOCS / "bench").glob("*.md"))
    lines = [
        "# Benchmarks",
        "",
        "Written by `python bench/run_all.py` from the sections in `docs/bench/` (each benchmark",
        "writes its own section when run alone). Ratios are measured side by side in one run;",
        "times are medians of several runs. The machine is noisy: compare ratios, not absolutes.",
        "",
        f"Machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"{_cpus()} CPUs.",
        "",
    ]
    for s in sections:
        lines.append(s.read_text(encoding="utf-8").rstrip())
        lines.append("")
    (DOCS / "benchmarks.md").write_text("\n".join(lines), encoding="utf-8")


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    raise SystemExit(main())
