"""``clinical-viewer compare PATH [--series UID] [--model NAME] [--engines …] --out DIR``.

Headless, no Qt. Loads one series, runs the engines on the same model input
(:func:`inference.compare.compare_engines`) and writes into ``--out``:

* ``compare.json`` — thresholds, verdict, per-pair metrics per label (Dice, IoU, volumes and
  their difference in mL and %, HD95 in mm), logits max/mean absolute difference, flip fraction,
  per-slice Dice and flip counts, engine timings, the model and the series (no patient
  identifiers; with ``--anonymize`` not even UIDs or descriptions);
* ``difference_worst_slice.png`` — the worst slice of the worst pair: engine A's mask, engine B's
  mask and the difference map (orange only A, azure only B, magenta label swapped);
* ``report.pdf`` when the report exporter is installed (:func:`_write_report`).

``--postprocess`` compares the masks after the package's post-processing (default: the raw
argmax masks, i.e. the networks themselves).

Exit codes: 0 every verdict passed; 1 a verdict failed (so a script can gate a deployment on it);
2 bad input (path, series, model, engine list; message on stderr).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

__all__ = [
    "cmd_compare",
    "parse_engines",
    "thresholds_from_args",
    "difference_figure",
    "PNG_NAME",
    "JSON_NAME",
]

log = logging.getLogger(__name__)

JSON_NAME = "compare.json"
PNG_NAME = "difference_worst_slice.png"
_KINDS = ("torch", "onnx", "onnx-int8")


def parse_engines(text: str) -> list[str]:
    """``"torch,onnx,onnx-int8"`` → list of ``kind[:provider]``, kind in torch/onnx/onnx-int8."""
    from viewer.cli import BadInput

    engines = [e.strip() for e in str(text or "").split(",") if e.strip()]
    bad = [e for e in engines if e.partition(":")[0] not in _KINDS]
    if bad:
        raise BadInput(
            f"--engines: unknown engine(s) {', '.join(bad)}; use a comma list of "
            f"{', '.join(_KINDS)} "
            "(optionally kind:provider, e.g. onnx:cuda)"
        )
    if len(engines) < 2 or len(set(engines)) != len(engines):
        raise BadInput(f"--engines needs at least two different engines, got {text!r}")
    return engines


def thresholds_from_args(args: argparse.Namespace) -> Any:
    """Verdict thresholds: defaults, overridden by ``--min-dice-*`` / ``--max-flip-fraction``."""
    from inference.compare import Thresholds
    from viewer.cli import BadInput

    t = Thresholds()
    for attr in ("min_dice_fp32", "min_dice_int8"):
        v = getattr(args, attr, None)
        if v is not None:
            if not 0.0 <= float(v) <= 1.0:
                raise BadInput(f"--{attr.replace('_', '-')} must be in [0, 1], got {v}")
            setattr(t, attr.replace("min_", ""), float(v))
    mff = getattr(args, "max_flip_fraction", None)
    if mff is not None:
        if not 0.0 <= float(mff) <= 1.0:
            raise BadInput(f"--max-flip-fraction must be in [0, 1], got {mff}")
        t.max_flip_fraction = float(mff)
    return t


def _label_overlay(
    gray: np.ndarray, labels: np.ndarray, colors: dict[int, tuple[int, int, int]]
) -> np.ndarray:
    lut = np.zeros((256, 3), np.uint8)
    for v, c in colors.items():
        if 0 < v < 256:
            lut[v] = c
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    col = np.take(lut, labels, axis=0)
    blend = cv2.addWeighted(col, 0.5, rgb, 0.5, 0.0)
    cv2.copyTo(blend, (labels > 0).astype(np.uint8), rgb)
    return rgb


def _caption(width: int, text: str) -> np.ndarray:
    bar = np.zeros((24, width, 3), np.uint8)
    safe = text.encode("ascii", "replace").decode("ascii")
    cv2.putText(bar, safe, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return bar


def difference_figure(
    result: Any, colors: dict[int, tuple[int, int, int]], *, min_height: int = 256
) -> np.ndarray:
    """RGB figure of the worst slice: A's mask | B's mask | difference map (over a dimmed slice)."""
    from inference.compare_metrics import difference_rgb

    pair, z = result.worst
    gray = result.image[z]
    panels = [
        (_label_overlay(gray, result.labels[pair.a][z], colors), f"A: {pair.a}"),
        (_label_overlay(gray, result.labels[pair.b][z], colors), f"B: {pair.b}"),
        (
            difference_rgb(
                result.labels[pair.a][z], result.labels[pair.b][z], (gray // 3).astype(np.uint8)
            ),
            f"{int(pair.slice_flips[z])} px differ",
        ),
    ]
    scale = max(1, int(np.ceil(min_height / max(gray.shape[0], 1))))
    cols = []
    for img, text in panels:
        if scale > 1:
            img = cv2.resize(
                img, (img.shape[1] * scale, img.shape[0] * scale), interpolation=cv2.INTER_NEAREST
            )
        cols.append(np.vstack([_caption(img.shape[1], text), img]))
    sep = np.full((cols[0].shape[0], 4, 3), 40, np.uint8)
    fig = np.hstack([cols[0], sep, cols[1], sep, cols[2]])
    orig = result.to_original_z(z)
    title = (
        f"slice {orig + 1}/{result.image.shape[0]} (index {orig}); slice Dice "
        f"{pair.slice_dice[z]:.4f}; "
        f"{'PASS' if pair.passed else 'FAIL'} (min Dice {pair.min_dice:.5f} vs {pair.threshold})"
    )
    legend = "orange: only A   azure: only B   magenta: label swapped"
    return np.vstack([_caption(fig.shape[1], title), fig, _caption(fig.shape[1], legend)])


def _write_report(
    out: Path,
    result: Any,
    volume: Any,
    package: Any,
    args: argparse.Namespace,
    doc: dict[str, Any],
    figure: np.ndarray | None = None,
) -> tuple[list[str], list[str]]:
    """Hook for the PDF exporter: ``viewer.export.report.write_report`` when importable.

    The report shows the reference engine's mask on the series, the parity verdict (``doc``, the
    ``compare.json`` content) and the worst-slice figure. Returns (files written, problems); a
    failing report never hides the verdict.
    """
    try:
        from viewer.export.report import write_report
    except ImportError:
        log.debug("PDF report export not available")
        return [], []
    try:
        ref = result.reference
        write_report(
            out / "report.pdf",
            volume=volume,
            labels=result.labels_on_volume(ref, volume.shape),
            model_info={
                "name": package.name,
                "version": package.version,
                "engine": ref,
                "sha256": package.files["onnx"].sha256,
            },
            labels_info={
                lab.value: {"name": lab.name, "color": list(lab.color)} for lab in package.labels
            },
            parity=doc,
            key_images=[("Worst slice: A | B | difference", figure)]
            if figure is not None
            else None,
            anonymize=bool(getattr(args, "anonymize", False)),
            title="PyTorch vs ONNX parity report",
        )
    except Exception as exc:  # noqa: BLE001 - an export problem must not hide the verdict
        log.debug("report failed", exc_info=True)
        return [], [f"PDF report not written: {exc}"]
    return ["report.pdf"], []


def _series_info(vol: Any, anonymize: bool) -> dict[str, Any]:
    info: dict[str, Any] = {
        "modality": vol.meta.modality,
        "series_number": vol.meta.series_number,
        "shape_zyx": list(vol.shape),
        "spacing_mm": list(vol.spacing),
    }
    if not anonymize:
        info["series_instance_uid"] = vol.meta.series_instance_uid
        info["description"] = vol.meta.series_description
    return info


def cmd_compare(args: argparse.Namespace) -> int:
    """Handler of ``clinical-viewer compare`` (see the module docstring). Returns the exit code."""
    from inference.compare import compare_engines
    from inference.package import find_package
    from viewer.dicom.load import load_stack, pick_stack
    from viewer.dicom.scan import scan
    from viewer.errors import DicomError
    from viewer.export.atomic import ensure_folder, write_bytes_atomic
    from viewer.export.png import write_png
    from viewer.segment_cmd import ProgressBar

    engines = parse_engines(args.engines)
    thresholds = thresholds_from_args(args)
    package = find_package(args.model)  # PackageError → exit 2
    stack, notes = pick_stack(scan(args.path), args.series)  # DicomError → exit 2
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    bar = ProgressBar("loading")
    try:
        vol = load_stack(stack, progress=bar)
    finally:
        bar.close()
    if vol.is_rgb:
        raise DicomError(
            f"stack {stack.stack_id} is a colour image; engines can only be compared on a CT volume"
        )
    bar = ProgressBar("compare")
    try:
        result = compare_engines(
            vol,
            package,
            engines,
            progress=bar,
            thresholds=thresholds,
            postprocess=bool(getattr(args, "postprocess", False)),
        )
    finally:
        bar.close()
    out = ensure_folder(args.out)
    colors = {lab.value: tuple(lab.color) for lab in package.labels}
    figure = difference_figure(result, colors)
    write_png(out / PNG_NAME, figure)
    doc = {
        "tool": "clinical-viewer compare",
        "series": _series_info(vol, bool(args.anonymize)),
        "model": {
            "name": package.name,
            "version": package.version,
            "files": {
                k: {"file": f.path.name, "sha256": f.sha256} for k, f in package.files.items()
            },
        },
        "engines_requested": engines,
        **result.to_dict(per_slice=True),
        "loader_warnings": [] if args.anonymize else list(vol.warnings),
    }
    files, problems = _write_report(out, result, vol, package, args, doc, figure)
    doc["files"] = [JSON_NAME, PNG_NAME, *files]
    doc["export_problems"] = problems
    write_bytes_atomic(out / JSON_NAME, json.dumps(doc, indent=1, allow_nan=False).encode("utf-8"))
    for w in result.warnings + problems:
        print(f"warning: {w}", file=sys.stderr)
    for p in result.pairs:
        worst = p.worst_slice
        print(
            f"{p.a} vs {p.b}: {'PASS' if p.passed else 'FAIL'}  min Dice {p.min_dice:.5f} (≥ "
            f"{p.threshold})  "
            f"flips {p.flips} ({p.flip_fraction:.2e})  logits max |Δ| {p.logits_max_abs:.2e}  "
            f"worst slice {result.to_original_z(worst)} ({int(p.slice_flips[worst])} px)"
        )
    for n, t in result.timings.items():
        print(f"  {n}: {t.per_slice_ms:.1f} ms/slice, {t.total_s:.2f} s total")
    print(f"{out}: {'PASS' if result.passed else 'FAIL'}")
    return 0 if result.passed else 1
