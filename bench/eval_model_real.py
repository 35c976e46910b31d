"""Evaluate the shipped lung model on the real CT in ../shared/data (not a benchmark of speed).

Loads each series with pydicom directly (sorted by ImagePositionPatient along the slice normal,
rescale applied, axial stacks flipped into the canonical LPS-axial layout), segments it with ONNX
FP32 and INT8 exactly like the model's input spec says (resample each slice to the model spacing,
window, pad to a multiple of 16, logits resized back bilinearly, argmax), and compares with the
classical reference of ``inference.reference``. Writes ``docs/bench/model_real.md`` and
``docs/images/model_*.png`` (model fill + reference contour). Usage::

    python bench/eval_model_real.py [--package resources/models/lung-ct-unet] [--data ../shared/data]
        [--quick] [--write-validation]

``--quick`` (checkpoint screening): FP32 only, no pictures, nothing written under docs/, one
JSON summary line at the end. ``--write-validation``: also store the figures in the package's
``model.json`` (``validation.real_ct``; hashes refreshed, the package re-verified).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inference.evaluate import ort_engine  # noqa: E402
from inference.package import load_package  # noqa: E402
from inference.reference import classical_lungs  # noqa: E402
from inference.train_data import normalize_window  # noqa: E402

DOCS = ROOT / "docs"


def load_series(folder: Path) -> tuple[np.ndarray, tuple[float, float, float], list[Path]]:
    """HU float32 ``[z, y, x]`` (z: superior first; columns → patient left; rows → posterior)."""
    import pydicom

    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    dss = [(p, pydicom.dcmread(p)) for p in files]
    dss = [(p, d) for p, d in dss if "PixelData" in d]
    iop = np.array(dss[0][1].ImageOrientationPatient, float)
    normal = np.cross(iop[:3], iop[3:])
    pos = np.array([float(np.dot(normal, np.array(d.ImagePositionPatient, float))) for _, d in dss])
    order = np.argsort(pos)
    dss = [dss[i] for i in order]
    pos = pos[order]
    vol = np.stack([d.pixel_array.astype(np.float32) * float(getattr(d, "RescaleSlope", 1))
                    + float(getattr(d, "RescaleIntercept", 0)) for _, d in dss])
    sy, sx = (float(v) for v in dss[0][1].PixelSpacing)
    sz = float(np.median(np.diff(pos))) if len(pos) > 1 else float(getattr(dss[0][1], "SliceThickness", 1.0))
    if iop[0] < 0:  # row direction toward patient right: flip columns
        vol = vol[:, :, ::-1]
    if iop[4] < 0:  # column direction toward anterior: flip rows
        vol = vol[:, ::-1, :]
    if normal[2] > 0:  # increasing position = superior → put superior first
        vol = vol[::-1]
    return np.ascontiguousarray(vol), (abs(sz), sy, sx), [p for p, _ in dss][:: (-1 if normal[2] > 0 else 1)]


def segment(engine, hu: np.ndarray, spacing_yx: tuple[float, float], spec, batch: int = 4) -> np.ndarray:
    """Labels ``[z, y, x]`` for a canonical HU volume, following the package input spec."""
    z, h, w = hu.shape
    nh, nw = round(h * spacing_yx[0] / spec.spacing_mm), round(w * spacing_yx[1] / spec.spacing_mm)
    d = spec.divisible_by
    ph, pw = -(-nh // d) * d, -(-nw // d) * d
    top, left = (ph - nh) // 2, (pw - nw) // 2
    out = np.zeros(hu.shape, np.uint8)
    interp = cv2.INTER_AREA if nh * nw < h * w else cv2.INTER_LINEAR
    for s in range(0, z, batch):
        xs = np.zeros((min(batch, z - s), 1, ph, pw), np.float32)
        xs[...] = normalize_window(np.full(1, spec.pad_value_hu, np.float32), spec.window_center, spec.window_width)[0]
        for i in range(xs.shape[0]):
            r = cv2.resize(hu[s + i], (nw, nh), interpolation=interp)
            xs[i, 0, top : top + nh, left : left + nw] = normalize_window(r, spec.window_center, spec.window_width)
        logits = engine(xs)[:, :, top : top + nh, left : left + nw]
        for i in range(logits.shape[0]):
            up = np.stack([cv2.resize(c, (w, h), interpolation=cv2.INTER_LINEAR) for c in logits[i]])
            out[s + i] = up.argmax(0)
    return out


def postprocess(lab: np.ndarray, spacing: tuple[float, float, float], pkg) -> np.ndarray:
    """The app's post-processing with the package defaults (largest 3D component per lung, ...)."""
    from inference.postprocess import postprocess_labels, resolve_settings

    return postprocess_labels(lab, spacing, resolve_settings(pkg.postprocess, None))[0]


def dice(a: np.ndarray, b: np.ndarray) -> float | None:
    s = int(a.sum()) + int(b.sum())
    return None if s == 0 else 2.0 * int((a & b).sum()) / s


def lung_scores(pred: np.ndarray, ref: np.ndarray) -> dict[str, float | None]:
    return {"lungs": dice(np.isin(pred, (1, 2)), np.isin(ref, (1, 2))),
            "right": dice(pred == 1, ref == 1), "left": dice(pred == 2, ref == 2)}


def overlay(hu: np.ndarray, lab: np.ndarray, ref: np.ndarray | None, colors, boxes=()) -> np.ndarray:
    """RGB picture: lung window, model labels filled (40 %), reference outline white, boxes green."""
    g = (normalize_window(hu, -600, 1500) * 255).astype(np.uint8)
    rgb = cv2.cvtColor(g, cv2.COLOR_GRAY2RGB)
    col = np.zeros_like(rgb)
    for v, c in colors.items():
        col[lab == v] = c
    m = lab > 0
    blend = cv2.addWeighted(rgb, 0.6, col, 0.4, 0)
    rgb[m] = blend[m]
    if ref is not None:
        for v in (1, 2):
            cs, _ = cv2.findContours((ref == v).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(rgb, cs, -1, (255, 255, 255), 1)
    for (x0, y0, x1, y1) in boxes:
        cv2.rectangle(rgb, (x0, y0), (x1, y1), (0, 255, 0), 1)
    return rgb


def montage(tiles: list[np.ndarray], size: int = 384) -> np.ndarray:
    rs = [cv2.resize(t, (size, size * t.shape[0] // t.shape[1]), interpolation=cv2.INTER_AREA) for t in tiles]
    h = max(t.shape[0] for t in rs)
    rs = [np.pad(t, ((0, h - t.shape[0]), (0, 0), (0, 0))) for t in rs]
    return np.concatenate(rs, 1)


def save_png(name: str, rgb: np.ndarray) -> None:
    (DOCS / "images").mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(DOCS / "images" / f"model_{name}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _fp_picture(path: Path, hu: np.ndarray, lab: np.ndarray, ref: np.ndarray, colors, boxes: dict) -> None:
    """The 4 slices with the most lesion voxels outside the annotated boxes, in z order."""
    outside = lab == 3
    for z, bs in boxes.items():
        for x0, y0, x1, y1 in bs:
            outside[z, y0 : y1 + 1, x0 : x1 + 1] = False
    per = outside.sum((1, 2))
    zs = sorted(int(z) for z in np.argsort(per)[::-1][:4] if per[z] > 0)
    print(f"  lesion voxels outside boxes per slice: { {int(z): int(v) for z, v in enumerate(per) if v} }")
    if zs:
        path.parent.mkdir(parents=True, exist_ok=True)
        rgb = montage([overlay(hu[z], lab[z], ref[z], colors, boxes.get(z, ())) for z in zs], 512)
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--package", default=str(ROOT / "resources" / "models" / "lung-ct-unet"))
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--quick", action="store_true", help="FP32 only, no pictures, docs untouched")
    ap.add_argument("--write-validation", action="store_true", help="store the figures in model.json")
    ap.add_argument("--fp-pictures", metavar="DIR",
                    help="also write DIR/fp_<series>.png: the 4 slices with the most lesion output outside "
                         "the tumour boxes (all lesion output on the 4D-CT), to see where false positives are")
    a = ap.parse_args(argv)
    pkg = load_package(a.package, verify=True)
    spec = pkg.input
    colors = {lab.value: lab.color for lab in pkg.labels if lab.value}
    engines = {"fp32": ort_engine(pkg.file("onnx"))}
    if not a.quick:
        engines["int8"] = ort_engine(pkg.file("onnx_int8"))
    pics = not a.quick
    data = Path(a.data)
    results: dict[str, dict] = {}
    lung_cases = {"B70f": data / "chest-ct-lungdx-a0002" / "series2_8mm_B70f",
                  "B40f": data / "chest-ct-lungdx-a0002" / "series3_8mm_B40f",
                  "4dct": data / "chest-ct-4dct-phase00" / "dicom"}
    ann = list(csv.DictReader(open(data / "chest-ct-lungdx-a0002" / "annotations.csv")))
    for name, folder in lung_cases.items():
        hu, sp, files = load_series(folder)
        ref = classical_lungs(hu, sp)
        r: dict = {"slices": hu.shape[0], "spacing_mm": list(sp)}
        preds = {}
        for ek, eng in engines.items():
            raw = segment(eng, hu, sp[1:], spec)
            pp = postprocess(raw, sp, pkg)
            preds[ek] = pp
            r[ek] = {"raw": lung_scores(raw, ref), "post": lung_scores(pp, ref),
                     "lesion_voxels": int((raw == 3).sum())}
        if "int8" in preds:
            r["int8_vs_fp32"] = {str(v): dice(preds["int8"] == v, preds["fp32"] == v) for v in (1, 2, 3)}
        p = preds["fp32"]
        boxes_by_slice: dict[int, list] = {}
        if name in ("B70f", "B40f"):
            names = [f.name for f in files]
            hits = inside = 0
            for row in ann:
                if row["kernel"] != name:
                    continue
                zi = names.index(Path(row["dicom_file"]).name)
                x0, y0, x1, y1 = (int(row[k]) for k in ("xmin", "ymin", "xmax", "ymax"))
                boxes_by_slice.setdefault(zi, []).append((x0, y0, x1, y1))
                box = p[zi, y0 : y1 + 1, x0 : x1 + 1]
                hits += int((box == 3).any())
                inside += int((box == 3).sum())
            tot3 = int((p == 3).sum())
            n_boxes = sum(len(v) for v in boxes_by_slice.values())
            r["lesion"] = {"annotated_slices": n_boxes, "slices_with_lesion_in_box": hits,
                           "lesion_voxels_total": tot3, "fraction_of_lesion_voxels_in_boxes":
                           (inside / tot3 if tot3 else None),
                           "box_voxels_labelled_lesion_or_lung": None}
        zs = sorted(boxes_by_slice) or [int(hu.shape[0] * f) for f in (0.25, 0.5, 0.75)]
        zs = [zs[0], zs[len(zs) // 2], zs[-1]] if len(zs) >= 3 else zs
        if name == "4dct":
            zs = [int(hu.shape[0] * f) for f in (0.2, 0.45, 0.7, 0.85)]
        if a.fp_pictures:
            _fp_picture(Path(a.fp_pictures) / f"fp_{name}.png", hu, p, ref, colors, boxes_by_slice)
        if pics:
            save_png(name, montage([overlay(hu[z], p[z], ref[z], colors, boxes_by_slice.get(z, ())) for z in zs]))
            r["picture_slices"] = zs
        results[name] = r
        print(name, json.dumps({k: r[k] for k in ("fp32", "int8_vs_fp32", "lesion") if k in r}), flush=True)
    # negative: upper abdomen, almost no lung
    hu, sp, _ = load_series(data / "abdomen-ct-lung-free" / "dicom")
    ref = classical_lungs(hu, sp)
    vox_ml = float(np.prod(sp)) / 1000
    r = {"slices": hu.shape[0], "reference_lung_ml": float(np.isin(ref, (1, 2)).sum() * vox_ml)}
    for ek, eng in engines.items():
        raw = segment(eng, hu, sp[1:], spec)
        r[ek] = {"lung_ml_raw": float(np.isin(raw, (1, 2)).sum() * vox_ml),
                 "lung_ml_post": float(np.isin(postprocess(raw, sp, pkg), (1, 2)).sum() * vox_ml),
                 "lesion_ml": float((raw == 3).sum() * vox_ml),
                 "slices_with_lung": int(np.isin(raw, (1, 2)).any((1, 2)).sum())}
        if ek == "fp32" and pics:
            save_png("abdomen", montage([overlay(hu[z], raw[z], ref[z], colors) for z in (0, 5, 12)]))
    results["abdomen"] = r
    print("abdomen", json.dumps(r), flush=True)
    if a.quick:
        print("SUMMARY", json.dumps(_summary(results)))
        return 0
    # pydicom's CT_small.dcm (128x128 crop)
    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    hu = (ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)).astype(np.float32)[None]
    sp = tuple(float(v) for v in ds.PixelSpacing)
    lab = segment(engines["fp32"], hu, sp, spec)
    frac = {pkg.label_name(v): float((lab == v).mean()) for v in range(4)}
    results["CT_small"] = {"fraction": frac, "hu_range": [float(hu.min()), float(hu.max())],
                           "fov_mm": [hu.shape[1] * sp[0], hu.shape[2] * sp[1]]}
    save_png("ct_small", montage([overlay(hu[0], lab[0], None, colors)], size=256))
    print("CT_small", json.dumps(results["CT_small"]))
    (DOCS / "bench").mkdir(parents=True, exist_ok=True)
    (DOCS / "bench" / "model_real.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    lines = ["| case | slices | lung Dice raw | lung Dice post | right | left | INT8 vs FP32 (R/L) |",
             "|---|---|---|---|---|---|---|"]
    for name in lung_cases:
        r = results[name]
        f = r["fp32"]
        lines.append(f"| {name} | {r['slices']} | {f['raw']['lungs']:.3f} | {f['post']['lungs']:.3f} | "
                     f"{f['post']['right']:.3f} | {f['post']['left']:.3f} | "
                     f"{r['int8_vs_fp32']['1']:.4f} / {r['int8_vs_fp32']['2']:.4f} |")
    md = "\n".join(lines) + "\n"
    (DOCS / "bench" / "model_real.md").write_text("# Lung model on real CT (vs classical reference)\n\n" + md,
                                                  encoding="utf-8")
    print(md)
    if a.write_validation:
        _write_validation(Path(a.package), results)
    print("SUMMARY", json.dumps(_summary(results)))
    return 0


def _summary(results: dict) -> dict:
    """The ship-gate figures: post-processed lung Dice per series, lesion hits, abdomen lung mL."""
    out: dict = {}
    for name in ("B70f", "B40f", "4dct"):
        r = results[name]
        out[name] = {"post": round(r["fp32"]["post"]["lungs"], 4), "left": round(r["fp32"]["post"]["left"], 4),
                     "right": round(r["fp32"]["post"]["right"], 4), "lesion_vox_raw": r["fp32"]["lesion_voxels"]}
        if "lesion" in r:
            le = r["lesion"]
            frac = le["fraction_of_lesion_voxels_in_boxes"]
            out[name].update(hits=f"{le['slices_with_lesion_in_box']}/{le['annotated_slices']}",
                             in_box=None if frac is None else round(frac, 4), lesion_vox=le["lesion_voxels_total"],
                             in_box_vox=None if frac is None else round(frac * le["lesion_voxels_total"]))
    out["abdomen_ml_post"] = round(results["abdomen"]["fp32"]["lung_ml_post"], 2)
    return out


def _write_validation(root: Path, results: dict) -> None:
    """Store the real-CT figures under ``validation.real_ct`` of ``root/model.json``."""
    from inference.release import write_model_json

    meta = json.loads((root / "model.json").read_text(encoding="utf-8"))
    real: dict = {}
    for name in ("B70f", "B40f", "4dct"):
        r = results[name]
        real[name] = {"lung_dice_vs_classical_reference_raw": r["fp32"]["raw"],
                      "lung_dice_vs_classical_reference_postprocessed": r["fp32"]["post"],
                      "int8_vs_fp32_dice": r["int8_vs_fp32"]}
        if "lesion" in r:
            real[name]["lesion"] = {k: r["lesion"][k] for k in ("annotated_slices", "slices_with_lesion_in_box",
                                                                "fraction_of_lesion_voxels_in_boxes")}
    ab = results["abdomen"]["fp32"]
    real["abdomen_lung_free"] = {"lung_ml_raw": ab["lung_ml_raw"], "lung_ml_postprocessed": ab["lung_ml_post"],
                                 "lesion_ml": ab["lesion_ml"]}
    real["note"] = ("Real scans in ../shared/data, never used for training; reference = "
                    "inference.reference.classical_lungs (inspected visually); post-processing = the package "
                    "defaults. Figures from bench/eval_model_real.py. See docs/model.md.")
    meta.setdefault("validation", {})["real_ct"] = real
    write_model_json(root, meta)


if __name__ == "__main__":
    raise SystemExit(main())
