"""``clinical-viewer model list|train|export|quantize|validate`` (no viewer imports; torch lazily).

Each action parses ``args.rest`` with its own argparse parser (``clinical-viewer model ACTION -h``).
Returns an exit code: 0 success, 1 a failed validation, 2 bad input (raised as PackageError /
ValueError, which the top-level CLI maps to 2).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from inference.package import PackageError, discover_packages, find_package, load_package, shipped_models_dir

__all__ = ["cmd_model"]

log = logging.getLogger(__name__)


def _print_progress(done: int, total: int, msg: str) -> None:
    print(f"  [{done}/{total}] {msg}", file=sys.stderr, flush=True)


def _list(rest: list[str]) -> int:
    p = argparse.ArgumentParser(prog="clinical-viewer model list")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(rest)
    pkgs, problems = discover_packages()
    rows = []
    for pkg in pkgs:
        val = pkg.raw.get("validation", {})
        syn = val.get("synthetic_heldout", {}).get("onnx_fp32", {}).get("dice", {})
        rows.append({"name": pkg.name, "version": pkg.version, "path": str(pkg.root),
                     "files": sorted(pkg.files), "labels": [lab.name for lab in pkg.labels],
                     "provisional": bool(val.get("provisional", False)),
                     "heldout_dice": {pkg.label_name(int(k)): v for k, v in syn.items()}})
    if a.json:
        print(json.dumps({"packages": rows, "problems": problems}, indent=2))
        return 0
    if not rows:
        print("no model packages installed")
    for r in rows:
        flag = " (PROVISIONAL)" if r["provisional"] else ""
        dice = ", ".join(f"{k}: {v:.3f}" for k, v in r["heldout_dice"].items() if v is not None)
        print(f"{r['name']} {r['version']}{flag}  [{', '.join(r['files'])}]  {r['path']}")
        if dice:
            print(f"    held-out synthetic Dice {dice}")
    for prob in problems:
        print(f"problem: {prob}", file=sys.stderr)
    return 0


def _train(rest: list[str]) -> int:
    from inference.train import main

    return main(rest)


def _export(rest: list[str]) -> int:
    p = argparse.ArgumentParser(prog="clinical-viewer model export",
                                description="checkpoint → model.pt + verified model.onnx + model.json")
    p.add_argument("--checkpoint", required=True, help="a train.py checkpoint (best.pt / last.pt)")
    p.add_argument("--out", default=str(shipped_models_dir() / "lung-ct-unet"), help="package folder")
    p.add_argument("--name", default="lung-ct-unet")
    p.add_argument("--version", default="1.0.0")
    p.add_argument("--provisional", action="store_true", help="mark the package provisional")
    p.add_argument("--notes", default="")
    p.add_argument("--quantize", action="store_true", help="also run the quantize step")
    p.add_argument("--evaluate", action="store_true", help="also evaluate on held-out slices")
    a = p.parse_args(rest)
    if not Path(a.checkpoint).is_file():
        raise PackageError(f"checkpoint {a.checkpoint} does not exist; train first (clinical-viewer model train)")
    from inference.release import evaluate_package, export_package, quantize_package

    cmd = "clinical-viewer model export " + " ".join(rest)
    export_package(a.checkpoint, a.out, name=a.name, version=a.version, provisional=a.provisional,
                   command=cmd, notes=a.notes, progress=_print_progress)
    print(f"exported {a.out}")
    if a.quantize:
        res = quantize_package(a.out, progress=_print_progress)
        print(f"INT8 vs FP32: {json.dumps(res['dice'])}")
    if a.evaluate:
        ev = evaluate_package(a.out)
        print(f"held-out FP32 Dice: {json.dumps(ev['onnx_fp32']['dice'])}")
    return 0


def _quantize(rest: list[str]) -> int:
    p = argparse.ArgumentParser(prog="clinical-viewer model quantize",
                                description="add a static INT8 QDQ model (model.int8.onnx) to a package")
    p.add_argument("--package", default=str(shipped_models_dir() / "lung-ct-unet"))
    p.add_argument("--calib", type=int, default=48, help="calibration slices")
    p.add_argument("--activations", default="u8", choices=["u8", "s8"])
    p.add_argument("--weights", default="s8", choices=["u8", "s8"])
    a = p.parse_args(rest)
    from inference.release import quantize_package

    load_package(a.package)
    res = quantize_package(a.package, calib_n=a.calib, activations=a.activations, weights=a.weights,
                           progress=_print_progress)
    print(json.dumps(res, indent=2))
    return 0


def _validate(rest: list[str]) -> int:
    p = argparse.ArgumentParser(prog="clinical-viewer model validate",
                                description="re-check hashes, ONNX/torch/INT8 parity and held-out accuracy")
    p.add_argument("name", nargs="?", help="package name (default: the first installed)")
    p.add_argument("--package", help="package folder instead of a name")
    p.add_argument("-n", type=int, default=24, help="held-out slices to generate")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(rest)
    from inference.evaluate import HELDOUT_SEED, validate_package

    pkg = load_package(a.package) if a.package else find_package(a.name)
    res = validate_package(pkg, n=a.n, seed=a.seed if a.seed is not None else HELDOUT_SEED + 1)
    if a.json:
        print(json.dumps(res, indent=2, default=_jsonable))
    else:
        c = res["checks"]
        print(f"{pkg.name} {pkg.version}: {'OK' if res['ok'] else 'FAILED'}"
              f"{' (provisional model)' if res['provisional'] else ''}")
        print("  hashes: ok")
        if "onnx_vs_torch" in c:
            print(f"  ONNX vs PyTorch: max |Δlogit| {c['onnx_vs_torch']['max_abs_logit_diff']:.2e}, "
                  f"min Dice {c['onnx_vs_torch']['min_dice']}")
        d = c["heldout_fp32"]["dice"]
        print(f"  held-out Dice ({a.n} fresh slices): " + ", ".join(
            f"{pkg.label_name(int(k))} {v:.4f}" for k, v in d.items() if v is not None))
        if "int8_vs_fp32" in c:
            print(f"  INT8 vs FP32 Dice: {c['int8_vs_fp32']['dice']}")
        for f in res["failures"]:
            print(f"  FAILED: {f}")
    return 0 if res["ok"] else 1


def _jsonable(o: Any) -> Any:
    return float(o) if hasattr(o, "__float__") else str(o)


ACTIONS = {"list": _list, "train": _train, "export": _export, "quantize": _quantize, "validate": _validate}


def cmd_model(args: argparse.Namespace) -> int:
    """Dispatch ``args.action`` with ``args.rest`` (the remaining argv)."""
    rest = [r for r in (args.rest or []) if r != "--"]
    try:
        return ACTIONS[args.action](rest)
    except SystemExit as exc:  # argparse: -h or a usage error
        return int(exc.code or 0) if exc.code in (0, None) else 2
