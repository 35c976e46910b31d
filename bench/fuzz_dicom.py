"""Long fuzz run over DICOM scan/load: ``python bench/fuzz_dicom.py --n 10000``.

Seeded mutations of real and synthetic DICOM (see ``tests/fuzzlib.py``), each case run in a
worker process with a per-case deadline and peak-memory bound. Prints a markdown summary
(cases, outcomes by status and by mutation kind, slowest case, peak memory, failures) and
writes it to ``docs/fuzz_dicom_run.md``; with ``--failures DIR`` failing cases are kept there
for reproduction. Not part of ``bench/run_all.py`` (it takes about an hour on 2 busy cores).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fuzzlib import Runner, build_seeds, make_case, materialise  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=20261129)
    ap.add_argument("--timeout", type=float, default=30.0, help="per-case deadline, s")
    ap.add_argument("--failures", type=Path, default=None, help="keep failing cases here")
    ap.add_argument("--shared-data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "fuzz_dicom_run.md")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="fuzz-seeds-"))
    seeds = build_seeds(work, shared_data=args.shared_data)
    by_status: Counter[str] = Counter()
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    failures = []
    slowest = None
    peak = None
    t0 = time.perf_counter()
    with Runner(timeout=args.timeout) as runner:
        for i in range(args.n):
            case = make_case(i, seeds, rng)
            o = runner.run(case)
            by_status[o.status] += 1
            for k in o.kind.split("+"):
                by_kind[k][o.status] += 1
            if slowest is None or o.seconds > slowest.seconds:
                slowest = o
            if peak is None or o.peak_mb > peak.peak_mb:
                peak = o
            if o.status.startswith("FAIL"):
                failures.append(o)
                print(f"case {i} {o.kind} on {o.seed}: {o.status}: {o.detail[:400]}", flush=True)
                if args.failures:
                    materialise(case, args.failures)
            if (i + 1) % 500 == 0:
                print(
                    f"{i + 1}/{args.n} cases, {dict(by_status)}, {time.perf_counter() - t0:.0f} s",
                    flush=True,
                )
    shutil.rmtree(work, ignore_errors=True)
    total = time.perf_counter() - t0
    lines = [
        f"Fuzz run: {args.n} cases, seed {args.seed}, {len(seeds)} seeds, per-case deadline "
        f"{args.timeout:.0f} s, {total:.0f} s in all "
        f"({1000 * total / max(1, args.n):.0f} ms/case).",
        "",
        "| outcome | cases |",
        "|---|---:|",
        *[f"| {s} | {c} |" for s, c in sorted(by_status.items())],
        "",
        "| mutation | " + " | ".join(sorted(by_status)) + " |",
        "|---|" + "---:|" * len(by_status),
        *[
            f"| {k} | " + " | ".join(str(by_kind[k][s]) for s in sorted(by_status)) + " |"
            for k in sorted(by_kind)
        ],
        "",
    ]
    if slowest:
        lines.append(
            f"Slowest case: #{slowest.case_id} ({slowest.kind} on {slowest.seed}) "
            f"{slowest.seconds:.2f} s, {slowest.status}: {slowest.detail[:160]}"
        )
    if peak:
        lines.append(
            f"Largest peak-RSS growth: #{peak.case_id} ({peak.kind} on {peak.seed}) "
            f"{peak.peak_mb:.0f} MB, {peak.status}"
        )
    lines.append(f"Failures: {len(failures)}")
    lines.extend(
        f"- #{o.case_id} {o.kind} on {o.seed}: {o.status}: {o.detail[:300]!r}"
        for o in failures[:30]
    )
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("## DICOM fuzz run\n\n" + text)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
