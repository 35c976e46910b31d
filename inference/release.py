"""Build a model package from a training checkpoint: export, verify, quantise, evaluate, write model.json.

Steps (each is also a ``clinical-viewer model`` action):

* :func:`export_package` — ``model.pt`` (state_dict + architecture), ``model.onnx`` (verified
  against PyTorch on several sizes and batch sizes), ``model.json`` with hashes and provenance.
* :func:`quantize_package` — ``model.int8.onnx`` (static QDQ u8/s8, calibrated on phantom
  slices), verified against FP32 on held-out slices.
* :func:`evaluate_package` — Dice on held-out synthetic slices (seed ``HELDOUT_SEED``) for FP32
  and INT8, written to ``validation``.

Imports torch lazily (inside :func:`export_package`).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

from inference.evaluate import HELDOUT_SEED, eval_generator, heldout_slices, ort_engine, synthetic_dice
from inference.jobs import CancelCheck, Progress, check_cancel, report
from inference.package import load_package, sha256_file

__all__ = ["export_package", "quantize_package", "evaluate_package", "LABELS", "write_model_json"]

log = logging.getLogger(__name__)

# shown with every lesion output (GUI, report, CLI) until a release is validated on annotated real CT
LESION_CAUTION = ("Not validated on real CT: the lesion label misses tumour and marks false positives "
                  "(e.g. in the liver/spleen domes under thick slices). Review every lesion; no lesion label "
                  "does not exclude one (docs/model.md).")
LABELS = [
    {"value": 0, "name": "background", "color": [0, 0, 0]},
    {"value": 1, "name": "right lung", "color": [64, 160, 255]},
    {"value": 2, "name": "left lung", "color": [255, 200, 40]},
    {"value": 3, "name": "lesion", "color": [235, 40, 60], "caution": LESION_CAUTION},
]
CALIB_SEED = 555_001


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_model_json(root: Path, meta: dict[str, Any]) -> Path:
    """Refresh the ``files`` hashes from disk and write ``root/model.json`` (then re-load it to check)."""
    for spec in meta.get("files", {}).values():
        spec["sha256"] = sha256_file(root / spec["path"])
        spec["bytes"] = (root / spec["path"]).stat().st_size
    path = root / "model.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    load_package(root, verify=True)
    return path


def _phantom_version(generator: str) -> str:
    """``__version__`` of the generator module if it has one, else a hash of its package sources."""
    import hashlib
    import importlib

    mod = importlib.import_module(generator.partition(":")[0])
    ver = getattr(mod, "__version__", getattr(mod, "GENERATOR_VERSION", None))
    if ver is not None:
        return str(ver)
    src = Path(str(mod.__file__))
    h = hashlib.sha256()
    for f in sorted(src.parent.glob(src.stem + "*.py")):  # phantom.py + phantom_*.py
        h.update(f.read_bytes())
    return f"sources-sha256:{h.hexdigest()[:16]}"


def export_package(
    checkpoint: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, name: str = "lung-ct-unet",
    version: str = "1.0.0", provisional: bool = False, command: str = "", notes: str = "",
    progress: Progress | None = None, cancel: CancelCheck | None = None,
) -> Path:
    """Write ``model.pt``, ``model.onnx`` (verified) and ``model.json`` into ``out_dir``."""
    import torch

    from inference.export import export_onnx, verify_onnx
    from inference.networks import UNet2D, count_parameters
    from inference.train import load_checkpoint

    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    ck = load_checkpoint(checkpoint)
    cfg = ck["config"]
    data = cfg["data"]
    model = UNet2D(**ck["arch_args"])
    model.load_state_dict(ck["model"])
    model.eval()
    torch.save({"state_dict": model.state_dict(), "architecture": "UNet2D", "args": ck["arch_args"]}, root / "model.pt")
    report(progress, 1, 3, "weights saved")
    check_cancel(cancel)
    export_onnx(model, root / "model.onnx")
    x, _ = heldout_slices(6, CALIB_SEED + 17, spacing_mm=data["spacing_mm"], center=data["window_center"],
                          width=data["window_width"], generator=eval_generator(data["generator"]), canvas=256)
    report(progress, 2, 3, "exported")
    parity = verify_onnx(model, root / "model.onnx", images=x)
    hist = ck.get("history", [])
    meta: dict[str, Any] = {
        "schema": 1, "name": name, "version": version, "task": "segmentation",
        "description": ("2D U-Net for chest CT: right lung, left lung and lung lesions; trained only on "
                        "synthetic phantom slices (inference.phantom)."),
        "modalities": ["CT"],
        "labels": LABELS,
        "input": {"channels": 1, "layout": "NCHW",
                  "window": {"center": data["window_center"], "width": data["window_width"]},
                  "normalize": "0..1", "inplane": {"policy": "spacing", "spacing_mm": data["spacing_mm"]},
                  "divisible_by": model.divisible_by, "orientation": "LPS-axial", "pad_value_hu": -1024},
        "domain": {"modalities": ["CT"], "body_parts": ["CHEST", "LUNG", "THORAX", "THORAXABD", ""],
                   "hu_range": [-1100, 3100], "pixel_spacing_mm": [0.4, 2.0], "fov_mm": [200, 550],
                   "orientations": ["axial"]},
        "files": {"onnx": {"path": "model.onnx"}, "torch": {"path": "model.pt"}},
        "torch": {"architecture": "UNet2D", "args": ck["arch_args"], "gradcam_target_layer": f"decoder.{model.depth - 1}",
                  "parameters": count_parameters(model)},
        "output": {"kind": "logits", "activation": "softmax"},
        "postprocess": {"largest_component_labels": [1, 2], "fill_holes_labels": [1, 2],
                        "fill_holes_mode": "2d", "min_component_mm3": {"3": 10.0},
                        "require_contact": {"3": [1, 2]}},
        "training": {
            "data": {**data, "generator_version": _phantom_version(eval_generator(data["generator"]))},
            "seed": cfg["seed"], "steps": ck["step"], "steps_planned": cfg["steps"], "batch": cfg["batch"],
            "world_size": ck.get("world_size", 1), "optimizer": f"AdamW lr {cfg['lr']} wd {cfg['weight_decay']}",
            "loss": "cross-entropy" + (f" (class weights {cfg['class_weights']})" if cfg.get("class_weights") else "")
                    + " + (1 - soft Dice over labels 1..3)", "init": cfg.get("init"),
            "final_loss_mean_last_50": float(np.mean(hist[-50:])) if hist else None,
            "checkpoint": Path(checkpoint).name, "command": command, "notes": notes,
        },
        "validation": {"provisional": provisional, "acceptance": {"min_dice": {"1": 0.9, "2": 0.9}}},
        "parity": {"onnx_vs_torch": {k: parity[k] for k in ("max_abs_logit_diff", "mean_abs_logit_diff",
                                                             "min_dice", "pixel_agreement")},
                   "cases": [{k: c[k] for k in ("size", "batch", "max_abs")} for c in parity["cases"]],
                   "checked": _now(), "onnxruntime": _ort_version(), "torch": torch.__version__,
                   "platform": platform.machine()},
        "created": _now(),
    }
    write_model_json(root, meta)
    report(progress, 3, 3, "model.json written")
    log.info("package %s written to %s", name, root)
    return root


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def _meta(root: Path) -> dict[str, Any]:
    return json.loads((root / "model.json").read_text(encoding="utf-8"))


def quantize_package(
    out_dir: str | os.PathLike[str], *, calib_n: int = 48, check_n: int = 24, activations: str = "u8",
    weights: str = "s8", progress: Progress | None = None, cancel: CancelCheck | None = None,
) -> dict[str, Any]:
    """Add ``model.int8.onnx`` to a package (calibrated on ``calib_n`` phantom slices, checked on others)."""
    from inference.quantize import quantize_int8, verify_int8

    root = Path(out_dir)
    meta = _meta(root)
    inp = meta["input"]
    gen = eval_generator(meta["training"]["data"]["generator"])
    kw = {"spacing_mm": inp["inplane"]["spacing_mm"], "center": inp["window"]["center"],
          "width": inp["window"]["width"], "generator": gen, "canvas": 256}
    cal, _ = heldout_slices(calib_n, CALIB_SEED, **kw)
    report(progress, 1, 3, "calibration slices")
    check_cancel(cancel)
    quantize_int8(root / "model.onnx", root / "model.int8.onnx", cal, activations=activations, weights=weights)
    report(progress, 2, 3, "quantised")
    chk, _ = heldout_slices(check_n, HELDOUT_SEED + 5, **kw)
    res = verify_int8(root / "model.onnx", root / "model.int8.onnx", chk)
    meta["files"]["onnx_int8"] = {"path": "model.int8.onnx"}
    meta["parity"]["int8_vs_fp32"] = {**res, "calibration": {"slices": calib_n, "seed": CALIB_SEED,
                                      "method": "MinMax", "format": "QDQ", "activations": activations,
                                      "weights": weights, "per_channel": True,
                                      "fp32_nodes": "first convolution (reads the image; its 8-bit weights cost "
                                                    "~0.6 % lesion Dice, docs/int8_research.md) and output head "
                                                    "(1x1 conv producing the logits)"}}
    write_model_json(root, meta)
    report(progress, 3, 3, "verified")
    return res


def evaluate_package(
    out_dir: str | os.PathLike[str], *, n: int = 64, progress: Progress | None = None,
    cancel: CancelCheck | None = None,
) -> dict[str, Any]:
    """Held-out synthetic Dice (seed ``HELDOUT_SEED``) for FP32 and INT8, stored under ``validation``."""
    root = Path(out_dir)
    meta = _meta(root)
    inp = meta["input"]
    x, y = heldout_slices(n, HELDOUT_SEED, spacing_mm=inp["inplane"]["spacing_mm"], center=inp["window"]["center"],
                          width=inp["window"]["width"], generator=eval_generator(meta["training"]["data"]["generator"]))
    out: dict[str, Any] = {"seed": HELDOUT_SEED, "slices": n, "canvas": int(x.shape[-1]), "checked": _now()}
    out["onnx_fp32"] = synthetic_dice(ort_engine(root / "model.onnx"), x, y, cancel=cancel, progress=progress)
    if (root / "model.int8.onnx").is_file():
        out["onnx_int8"] = synthetic_dice(ort_engine(root / "model.int8.onnx"), x, y, cancel=cancel)
    meta["validation"]["synthetic_heldout"] = out
    write_model_json(root, meta)
    return out
