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
    summary: list[tuple[str, float, float, str]] = []  # name, wall s, peak RSS MiB, status
    for script in scripts:
        name = script.stem.removeprefix("bench_")
        if (only and name not in only) or name in skip:
            continue
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        code, peak_mib = _run_measured([sys.executable, str(script)], args.timeout)
        wall = time.perf_counter() - t0
        status = "ok" if code == 0 else ("timed out" if code is None else f"exit {code}")
        if status != "ok":
            failures.append(f"{name}: {status}")
        summary.append((name, wall, peak_mib, status))
        print(f"   ({wall:.0f} s, peak RSS {peak_mib:.0f} MiB)", flush=True)
    if summary:
        _write_run_table(summary)
    write_summary()
    for f in failures:
        print("FAILED", f, file=sys.stderr)
    return 1 if failures else 0


def _run_measured(cmd: list[str], timeout: float) -> tuple[int | None, float]:
    """Run ``cmd``; return (exit code or None on timeout, the child's peak RSS in MiB).

    ``os.wait4`` gives the resource usage of that one child (``ru_maxrss``, KiB on Linux),
    so each benchmark's peak memory is measured on its own process, whatever it imports."""
    import os
    import signal

    proc = subprocess.Popen(cmd, cwd=ROOT)
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage.ru_maxrss / 1024.0
        if time.monotonic() > deadline:
            proc.send_signal(signal.SIGKILL)
            _, _, usage = os.wait4(proc.pid, 0)
            proc.returncode = -9
            return None, usage.ru_maxrss / 1024.0
        time.sleep(0.2)


def _write_run_table(rows: list[tuple[str, float, float, str]]) -> None:
    """Write the per-process table, keeping earlier rows of benchmarks not re-run this time."""
    out = DOCS / "bench" / "_processes.md"
    merged: dict[str, str] = {}
    if out.is_file():
        for line in out.read_text(encoding="utf-8").splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 4 and cells[0] not in ("benchmark", "---") and line.startswith("| "):
                merged[cells[0]] = line
    for n, w, m, st in rows:
        merged[n] = f"| {n} | {w:.0f} | {m:.0f} | {st} |"
    lines = [
        "## Benchmark processes (`bench/run_all.py`)",
        "",
        "Wall time and peak resident memory of each benchmark process as a whole (its own",
        "figures, including finer-grained memory where it measures it, are in its section).",
        "",
        "| benchmark | wall s | peak RSS MiB | status |",
        "|---|---:|---:|---|",
    ]
    lines += [merged[k] for k in sorted(merged)]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_summary() -> None:
    sections = sorted((DOCS / "bench").glob("*.md"))
    lines = [
        "# Benchmarks",
        "",
        "Written by `python bench/run_all.py` from the sections in `docs/bench/` (each benchmark",
        "writes its own section when run alone). Ratios are measured side by side in one run;",
        "times are medians of several runs. The machine is noisy: compare ratios, not absolutes.",
        "",
        f"Machine: {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, {_cpus()} CPUs.",
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
