"""INT8 quantisation recipes vs FP32 on one fixed held-out set: argmax Dice per label and speed.

Calibration: the shipped recipe's 48 phantom slices (``inference.release.CALIB_SEED``, canvas 256,
25 % "hires" slices). Evaluation: ``--eval-n`` lesion-rich slices (``PhantomConfig(lesion_prob=0.85)``,
seed ``EVAL_SEED``, never used for calibration or training), pooled Dice of INT8 vs FP32 argmax.
Both sets are generated once and cached (``--cache``), so every recipe sees the same pixels even
if the phantom code changes meanwhile.

    OMP_NUM_THREADS=1 nice -n 10 python bench/int8_recipes.py --recipes shipped bc
    nice -n 10 python bench/int8_recipes.py --sensitivity          # one node in FP32 at a time
    nice -n 10 python bench/int8_recipes.py --recipes shipped bc --time 1 2

Writes one JSON line per recipe to ``--out`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inference.evaluate import heldout_slices  # noqa: E402
from inference.quantize import ort_session, quantize_int8  # noqa: E402
from inference.release import CALIB_SEED  # noqa: E402

MODEL = ROOT / "resources/models/lung-ct-unet/model.onnx"
EVAL_SEED = 913_001  # not CALIB_SEED (555 001), not HELDOUT_SEED (777 001 + k), not a training seed (< 100 000)
LESION_RICH = {"generator": "inference.train_data:phantom_slice",
               "gen_kwargs": {"phantom_config": {"lesion_prob": 0.85}}}

# recipe name -> (quantize_int8 keyword arguments, calibration set name); every recipe but "default"
# spells out bias_correction and gets keep_input_fp32=False unless it says otherwise, so the names
# keep their meaning when quantize_int8's defaults change. "shipped" = resources/models/ 1.1.0 INT8.
RECIPES: dict[str, tuple[dict[str, Any], str]] = {
    "default": ({}, "cal"),
    "shipped": ({"bias_correction": False}, "cal"),
    "bc": ({"bias_correction": True}, "cal"),
    "bc32": ({"bias_correction": True, "bias_correction_slices": 32}, "cal"),
    "cal_lesion": ({"bias_correction": False}, "cal_lesion"),
    "cal_mixed": ({"bias_correction": False}, "cal_mixed"),
    "bc_cal_mixed": ({"bias_correction": True}, "cal_mixed"),
    "moving_avg": ({"bias_correction": False, "extra_options": {"CalibMovingAverage": True}}, "cal"),
    "reduce_range": ({"bias_correction": False, "reduce_range": True}, "cal"),
    "percentile": ({"bias_correction": False, "calibrate_method": "percentile"}, "cal"),
    "conv1_fp32": ({"bias_correction": False, "keep_input_fp32": True}, "cal"),
    "bc_conv1_fp32": ({"bias_correction": True, "keep_input_fp32": True}, "cal"),
    "bc48_conv1_fp32": ({"bias_correction": True, "bias_correction_slices": 48, "keep_input_fp32": True},
                        "cal"),
    "pct_conv1_fp32": ({"bias_correction": False, "calibrate_method": "percentile",
                        "keep_input_fp32": True}, "cal"),
    "bc_pct": ({"bias_correction": True, "calibrate_method": "percentile"}, "cal"),
    "bc_pct_conv1_fp32": ({"bias_correction": True, "calibrate_method": "percentile",
                           "keep_input_fp32": True}, "cal"),
    # the image as 16-bit (conv 1 then has no integer kernel: it runs in float on its s8 weights)
    "image_u16": ({"bias_correction": False, "extra_options": {"TensorQuantOverrides": {
        "image": [{"quant_type": "u16"}]}}}, "cal"),
    # conv 1 weights as 16-bit, image still u8 (per-tensor scale for that weight)
    "conv1_w16": ({"bias_correction": False, "extra_options": {"TensorQuantOverrides": {
        "encoder.0.0.weight": [{"quant_type": "s16"}]}}}, "cal"),
    "head_int8": ({"bias_correction": False, "keep_head_fp32": False}, "cal"),
    "bc_head_int8": ({"bias_correction": True, "keep_head_fp32": False}, "cal"),
}


def _sets(cache: Path, eval_n: int, eval_seed: int = EVAL_SEED, calib_seed: int = CALIB_SEED) -> dict[str, np.ndarray]:
    cache = cache.with_name(f"{cache.stem}-{calib_seed}-{eval_seed}{cache.suffix}")
    if cache.is_file():
        with np.load(cache) as z:
            d = {k: z[k] for k in z.files}
        if len(d["eval"]) == eval_n:
            return d
    kw = {"spacing_mm": 1.5, "center": -500.0, "width": 1600.0, "canvas": 256}
    cal, _ = heldout_slices(48, calib_seed, generator="inference.phantom:generate_slice", **kw)
    cal_l, _ = heldout_slices(48, calib_seed, **LESION_RICH, **kw)
    ev, ev_y = heldout_slices(eval_n, eval_seed, **LESION_RICH, **kw)
    d = {"cal": cal, "cal_lesion": cal_l, "cal_mixed": np.concatenate([cal[:24], cal_l[24:]]),
         "eval": ev, "eval_labels": ev_y}
    np.savez_compressed(cache, **d)
    return d


def _argmax(path: Path, x: np.ndarray, threads: int = 1) -> np.ndarray:
    s = ort_session(path, threads)
    return np.concatenate([s.run(["logits"], {"image": x[i : i + 4]})[0].argmax(1).astype(np.uint8)
                           for i in range(0, len(x), 4)])


def _compare(ref: np.ndarray, got: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {"pixel_agreement": float((ref == got).mean())}
    for k in (1, 2, 3):
        a, b = ref == k, got == k
        t = int(a.sum() + b.sum())
        out[f"dice_{k}"] = 2.0 * int((a & b).sum()) / t if t else None
    out["lesion_px_fp32"], out["lesion_px_int8"] = int((ref == 3).sum()), int((got == 3).sum())
    return out


def _time(paths: dict[str, Path], x: np.ndarray, threads: int, rounds: int = 7, reps: int = 10) -> dict[str, float]:
    """Median ms/slice at batch 1, models interleaved round by round in one process."""
    sess = {k: ort_session(p, threads) for k, p in paths.items()}
    for s in sess.values():
        for i in range(3):
            s.run(["logits"], {"image": x[i : i + 1]})
    ms: dict[str, list[float]] = {k: [] for k in sess}
    for r in range(rounds):
        for k, s in sess.items():
            t0 = time.perf_counter()
            for i in range(reps):
                s.run(["logits"], {"image": x[(r * reps + i) % len(x)][None]})
            ms[k].append((time.perf_counter() - t0) * 1e3 / reps)
    return {k: float(np.median(v)) for k, v in ms.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=MODEL)
    ap.add_argument("--recipes", nargs="*", default=["shipped", "bc"])
    ap.add_argument("--sensitivity", action="store_true", help="also: each Conv/ConvTranspose alone in FP32")
    ap.add_argument("--sensitivity-on", default=None, help="a recipe name: each further Conv alone in FP32 on top")
    ap.add_argument("--fp32-nodes", nargs="*", default=None, help="extra recipe: these nodes in FP32 (+ --bc)")
    ap.add_argument("--bc", action="store_true", help="bias correction for the --fp32-nodes recipe")
    ap.add_argument("--eval-n", type=int, default=96)
    ap.add_argument("--eval-seed", type=int, default=EVAL_SEED)
    ap.add_argument("--calib-seed", type=int, default=CALIB_SEED)
    ap.add_argument("--time", nargs="*", type=int, default=[], help="thread counts to time FP32 vs each INT8")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "int8_recipes_sets.npz")
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "int8_recipes.jsonl")
    ap.add_argument("--keep", type=Path, default=Path(tempfile.gettempdir()) / "int8_recipes")
    a = ap.parse_args(argv)

    sets = _sets(a.cache, a.eval_n, a.eval_seed, a.calib_seed)
    ev = sets["eval"]
    ref = _argmax(a.model, ev)
    print(f"eval: {len(ev)} slices, {int((ref == 3).sum())} FP32 lesion pixels, "
          f"{int((ref == 3).any((1, 2)).sum())} slices with a lesion", flush=True)
    jobs: list[tuple[str, dict[str, Any], str]] = [(r, *RECIPES[r]) for r in a.recipes]
    if a.fp32_nodes is not None:
        name = ("bc+" if a.bc else "") + "fp32:" + ",".join(a.fp32_nodes)
        jobs.append((name, {"fp32_nodes": a.fp32_nodes, "bias_correction": a.bc}, "cal"))
    if a.sensitivity:
        import onnx

        for n in onnx.load(str(a.model)).graph.node:
            if n.op_type in ("Conv", "ConvTranspose") and n.output[0] != "logits":
                jobs.append((f"fp32:{n.name}", {"fp32_nodes": [n.name], "bias_correction": False}, "cal"))
    if a.sensitivity_on:  # on top of a recipe: each further node alone in FP32
        import onnx

        base_kw, base_cal = RECIPES[a.sensitivity_on]
        for n in onnx.load(str(a.model)).graph.node:
            if n.op_type in ("Conv", "ConvTranspose") and n.output[0] != "logits" and n.input[0] != "image":
                jobs.append((f"{a.sensitivity_on}+fp32:{n.name}", {**base_kw, "fp32_nodes": [n.name]}, base_cal))
    a.keep.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    rows = []
    for name, kw, cal in jobs:
        if "extra_options" in kw and "TensorQuantOverrides" in kw["extra_options"]:
            from onnxruntime.quantization import QuantType

            qt = {"u16": QuantType.QUInt16, "u8": QuantType.QUInt8, "s16": QuantType.QInt16}
            kw["extra_options"] = {"TensorQuantOverrides": {
                t: [{**o, "quant_type": qt[o["quant_type"]]} for o in ov]
                for t, ov in kw["extra_options"]["TensorQuantOverrides"].items()}}
        if name != "default":
            kw = {"keep_input_fp32": False, **kw}
        p = a.keep / (name.replace(":", "_").replace(",", "+") + ".onnx")
        t0 = time.perf_counter()
        quantize_int8(a.model, p, sets[cal], **kw)
        dt = time.perf_counter() - t0
        row = {"recipe": name, "calibration": cal, "calib_seed": a.calib_seed, "eval_seed": a.eval_seed,
               **_compare(ref, _argmax(p, ev)), "quantize_s": round(dt, 1)}
        rows.append(row)
        paths[name] = p
        with a.out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
    timing: dict[int, dict[str, float]] = {}
    for th in a.time:
        timing[th] = _time({"fp32": a.model, **paths}, ev, th)
        with a.out.open("a") as f:
            f.write(json.dumps({"timing_threads": th, **timing[th]}) + "\n")
    print("\n| recipe | lesion | right | left | pixel agr. | lesion px INT8/FP32 |"
          + "".join(f" ms {t}t (FP32 {timing[t]['fp32']:.1f}) | speed-up {t}t |" for t in timing))
    print("|---|---|---|---|---|---|" + "---|---|" * len(timing))
    for r in rows:
        line = (f"| {r['recipe']} | {r['dice_3']:.4f} | {r['dice_1']:.4f} | {r['dice_2']:.4f} | "
                f"{100 * r['pixel_agreement']:.3f} % | {r['lesion_px_int8']}/{r['lesion_px_fp32']} |")
        for t in timing:
            line += f" {timing[t][r['recipe']]:.1f} | {timing[t]['fp32'] / timing[t][r['recipe']]:.2f}x |"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
