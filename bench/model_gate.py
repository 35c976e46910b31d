"""Ship gate for a new lung-model candidate: its real-CT figures against the shipped model's.

The gate is the one declared for round 3 (``docs/model_gate_r3.md``), as code, so the next round
does not compute it by hand. Inputs are the ``SUMMARY`` dicts that
``bench/eval_model_real.py --quick`` prints (FP32, post-processed), plus the candidate's
``model.json`` for the held-out and parity items. Usage::

    python bench/model_gate.py --candidate runs/pkg_r4 [--baseline resources/models/lung-ct-unet]
    python bench/model_gate.py --candidate-summary c.json --baseline-summary b.json [--candidate-json model.json]

Prints one line per item and exits 0 when every item passes, 1 otherwise, 2 on bad input
(a missing or malformed file, a summary without a figure the gate needs). Declare the rules
(``RULES``, or ``--rules rules.json``) *before* evaluating a candidate; never tune them after.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

RULES: dict[str, Any] = {
    "lung_series": ["B70f", "B40f", "4dct"],
    "lung_dice_margin": 0.005,  # candidate post-processed lung Dice >= baseline - margin, per series
    "abdomen_ml_margin": 2.0,  # candidate lung mL on the abdomen negative <= baseline + margin
    "tumour_series": ["B70f", "B40f"],  # strictly more slices hit AND a larger in-box fraction
    "fp_series": "4dct",  # raw lesion voxels <= baseline (one small nodule, no mass)
    "heldout_lung_min": 0.97,
    "int8_min_dice": 0.99,
}


def _hits(s: str) -> int:
    return int(str(s).split("/")[0])


def gate(candidate: dict[str, Any], baseline: dict[str, Any], rules: dict[str, Any] | None = None,
         model_json: dict[str, Any] | None = None) -> list[tuple[str, bool, str]]:
    """``(item, passed, detail)`` per gate item. ``candidate``/``baseline`` are eval summaries."""
    r = {**RULES, **(rules or {})}
    out: list[tuple[str, bool, str]] = []
    for name in r["lung_series"]:
        c, b = candidate[name]["post"], baseline[name]["post"]
        out.append((f"1 lung Dice {name}", c >= b - r["lung_dice_margin"],
                    f"{c:.4f} vs baseline {b:.4f} - {r['lung_dice_margin']}"))
    c, b = candidate["abdomen_ml_post"], baseline["abdomen_ml_post"]
    out.append(("2 abdomen lung mL", c <= b + r["abdomen_ml_margin"], f"{c:.2f} vs {b:.2f} + {r['abdomen_ml_margin']}"))
    for name in r["tumour_series"]:
        ch, bh = _hits(candidate[name]["hits"]), _hits(baseline[name]["hits"])
        cf, bf = candidate[name]["in_box"] or 0.0, baseline[name]["in_box"] or 0.0
        out.append((f"3 tumour slices hit {name}", ch > bh, f"{candidate[name]['hits']} vs {baseline[name]['hits']}"))
        out.append((f"3 lesion fraction in boxes {name}", cf > bf, f"{cf:.4f} vs {bf:.4f}"))
    name = r["fp_series"]
    c, b = candidate[name]["lesion_vox_raw"], baseline[name]["lesion_vox_raw"]
    out.append((f"4 raw lesion voxels {name}", c <= b, f"{c} vs {b}"))
    if model_json is not None:
        ho = (model_json.get("validation", {}).get("synthetic_heldout", {}).get("onnx_fp32", {}).get("dice", {}))
        lungs = [ho.get("1"), ho.get("2")]
        ok = all(v is not None and v >= r["heldout_lung_min"] for v in lungs)
        out.append(("5 held-out lung Dice", ok, f"{lungs} vs >= {r['heldout_lung_min']}"))
        par = model_json.get("parity", {})
        md = par.get("onnx_vs_torch", {}).get("min_dice")  # per label in model.json
        md_vals = [v for v in (md.values() if isinstance(md, dict) else [md]) if v is not None]
        onnx_ok = bool(md_vals) and min(md_vals) >= 0.999
        int8 = par.get("int8_vs_fp32", {}).get("dice", {})
        int8_ok = bool(int8) and all(v is None or v >= r["int8_min_dice"] for v in int8.values())
        out.append(("5 ONNX and INT8 parity", onnx_ok and int8_ok, f"onnx min Dice {par.get('onnx_vs_torch', {}).get('min_dice')}, int8 {int8}"))
    return out


def quick_summary(package: str) -> dict[str, Any]:
    """Run ``eval_model_real.py --quick`` on ``package`` and parse its SUMMARY line."""
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "eval_model_real.py"), "--quick", "--package", package],
                         capture_output=True, text=True, check=True)
    line = next(ln for ln in reversed(res.stdout.splitlines()) if ln.startswith("SUMMARY "))
    return json.loads(line[len("SUMMARY "):])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--candidate", help="candidate package folder (evaluated here)")
    ap.add_argument("--baseline", default=str(ROOT / "resources" / "models" / "lung-ct-unet"))
    ap.add_argument("--candidate-summary", help="JSON file with the candidate's SUMMARY dict")
    ap.add_argument("--baseline-summary", help="JSON file with the baseline's SUMMARY dict")
    ap.add_argument("--candidate-json", help="the candidate's model.json (held-out and parity items)")
    ap.add_argument("--rules", help="JSON file overriding RULES")
    a = ap.parse_args(argv)
    if not (a.candidate or a.candidate_summary):
        ap.error("give --candidate or --candidate-summary")
    try:
        cand = json.loads(Path(a.candidate_summary).read_text()) if a.candidate_summary else quick_summary(a.candidate)
        base = json.loads(Path(a.baseline_summary).read_text()) if a.baseline_summary else quick_summary(a.baseline)
        mj_path = a.candidate_json or (str(Path(a.candidate) / "model.json") if a.candidate else None)
        mj = json.loads(Path(mj_path).read_text()) if mj_path else None
        rules = json.loads(Path(a.rules).read_text()) if a.rules else None
        items = gate(cand, base, rules, mj)
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or "").strip().splitlines()[-1:] or ["(no output)"]
        print(f"model_gate: error: evaluating a package failed: {tail[0]}", file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # JSONDecodeError is a ValueError
        what = f"missing figure {exc}" if isinstance(exc, KeyError) else str(exc)
        print(f"model_gate: error: bad input ({what}); summaries are the SUMMARY dicts of "
              "eval_model_real.py --quick", file=sys.stderr)
        return 2
    for item, ok, detail in items:
        print(f"{'PASS' if ok else 'FAIL'}  {item}: {detail}")
    passed = all(ok for _, ok, _ in items)
    print("GATE", "PASSED" if passed else "FAILED")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
