"""``clinical-viewer segment PATH [--series UID] [--model NAME] [--engine …] --out DIR``. No Qt.

One series (``--series``, or PATH holds a single image stack): writes into ``--out``
``labels.nii.gz`` (label map, LPS→RAS affine), ``stats.json`` (statistics, model, engine, domain
warnings, post-processing, timings) and, when the export modules are installed, ``seg.dcm`` and
``report.pdf`` (:func:`_write_extras`).

Several series under PATH (no ``--series``): one sub-folder per series
(``<series number>_<stack id>``, no patient identifiers), bad series are reported and skipped,
and ``summary.json`` lists every series with its outcome.

Exit codes: 0 every series segmented; 2 bad input (unreadable path, unknown model/series, a
scan outside the model's domain without ``--force``, …; the message is on stderr); 1 an
internal error (in a batch: any series failed internally).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from viewer.errors import is_user_error

__all__ = ["cmd_segment", "segment_one", "ProgressBar"]

log = logging.getLogger(__name__)


class ProgressBar:
    """A one-line terminal progress bar on stderr (``progress(done, total, message)``), ≤ 10
    updates/s."""

    def __init__(self, label: str, width: int = 30) -> None:
        self.label, self.width = label, width
        self._last = 0.0
        self._shown = False

    def __call__(self, done: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        frac = done / total if total else 1.0
        fill = int(round(frac * self.width))
        sys.stderr.write(
            f"\r{self.label:<9} [{'#' * fill}{'.' * (self.width - fill)}] {frac * 100:5.1f}% "
            f"{message[:30]:<30}"
        )
        sys.stderr.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self._shown = False


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def _write_extras(
    out: Path,
    volume: Any,
    result: Any,
    args: argparse.Namespace,
    stats: dict[str, Any] | None = None,
) -> tuple[list[str], list[str]]:
    """Hook for the export modules: ``seg.dcm`` (DICOM SEG) and ``report.pdf`` when importable.

    Returns (files written, problems). A missing module is skipped silently; a failing export is
    a problem reported in ``stats.json`` and on stderr, never a failed segmentation.
    """
    written: list[str] = []
    problems: list[str] = []
    try:
        from viewer.dicom.seg_reader import SegmentInfo
        from viewer.export.seg import write_seg
    except ImportError:
        log.debug("DICOM SEG export not available")
    else:
        engine = result.engine
        segments = [
            SegmentInfo(
                value=v,
                name=name,
                color=tuple(result.label_colors.get(v, (255, 0, 0))),
                algorithm_type="AUTOMATIC",
                algorithm_name=result.model["name"],
                algorithm_version=result.model["version"],
                algorithm_engine=f"{engine.get('engine')} {engine.get('provider')}",
                algorithm_parameters={"sha256": str(result.model.get("sha256"))},
            )
            for v, name in sorted(result.label_names.items())
            if v != 0
        ]
        try:
            write_seg(
                out / "seg.dcm", volume, result.labels, segments, anonymize=bool(args.anonymize)
            )
            written.append("seg.dcm")
        except Exception as exc:  # noqa: BLE001 - an export problem must not lose the segmentation
            problems.append(f"DICOM SEG not written: {exc}")
    try:
        from viewer.export.report import write_report
    except ImportError:
        log.debug("PDF report export not available")
    else:
        try:
            write_report(
                out / "report.pdf",
                volume=volume,
                result=result,
                stats=stats,
                anonymize=bool(args.anonymize),
            )
            written.append("report.pdf")
        except Exception as exc:  # noqa: BLE001
            problems.append(f"PDF report not written: {exc}")
    return written, problems


def segment_one(stack: Any, package: Any, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Load ``stack``, segment it, write the outputs into ``out``; returns the stats.json
    content."""
    from inference.pipeline import segment_volume
    from viewer.dicom.load import load_stack
    from viewer.export.nifti import write_nifti
    from viewer.segstats import segment_statistics

    t0 = time.perf_counter()
    bar = ProgressBar("loading")
    try:
        vol = load_stack(stack, progress=bar)
    finally:
        bar.close()
    t_load = time.perf_counter() - t0
    if vol.is_rgb:
        from viewer.errors import DicomError

        raise DicomError(
            f"stack {stack.stack_id} is a colour image ({vol.meta.modality}); only CT volumes "
            "can be segmented"
        )
    bar = ProgressBar("segment")
    try:
        result = segment_volume(
            vol,
            package,
            engine=args.engine,
            provider=args.provider,
            threads=args.threads,
            progress=bar,
            force_domain=bool(args.force),
            keep_probabilities=False,
        )
    finally:
        bar.close()
    t1 = time.perf_counter()
    stats = segment_statistics(
        result.labels, vol.voxels, vol.spacing, label_names=result.label_names
    )
    t_stats = time.perf_counter() - t1
    from viewer.export.atomic import ensure_folder

    ensure_folder(out)  # ExportError (read-only, not a folder) → exit 2
    write_nifti(result.labels, out / "labels.nii.gz", volume=vol)
    files = ["labels.nii.gz"]
    extra_files, problems = _write_extras(out, vol, result, args, stats)
    files += extra_files
    for p in problems:
        print(f"warning: {p}", file=sys.stderr)
    series: dict[str, Any] = {
        "stack_id": stack.stack_id,
        "modality": vol.meta.modality,
        "series_number": vol.meta.series_number,
        "shape_zyx": list(vol.shape),
        "spacing_mm": list(vol.spacing),
        "patient_position": vol.meta.patient_position,
    }
    if not args.anonymize:
        series["series_instance_uid"] = vol.meta.series_instance_uid
        series["description"] = vol.meta.series_description
    doc = {
        "tool": "clinical-viewer segment",
        "series": series,
        "model": result.model,
        "engine": result.engine,
        "domain_warnings": result.domain_warnings,
        "label_cautions": result.caution_lines(),
        "forced": bool(args.force and result.domain_warnings),
        "postprocess": result.postprocess,
        "geometry": result.geometry,
        "timings_s": {
            "load": round(t_load, 3),
            **{k: round(v, 3) for k, v in result.timings.items()},
            "statistics": round(t_stats, 3),
        },
        "statistics": stats,
        "loader_warnings": [] if args.anonymize else list(vol.warnings),
        "export_problems": problems,
        "files": files + ["stats.json"],
    }
    (out / "stats.json").write_text(
        json.dumps(doc, indent=1, default=_json_default), encoding="utf-8"
    )
    return doc


def _summary_line(doc: dict[str, Any]) -> str:
    parts = [f"{e['name']} {e['volume_ml']:.1f} mL" for e in doc["statistics"]["labels"]]
    les = [f"{v['count']} {v['name']} component(s)" for v in doc["statistics"]["lesions"].values()]
    return (
        ", ".join(parts + les)
        + f" ({doc['timings_s']['total']:.1f} s, {doc['engine']['provider']})"
    )


def cmd_segment(args: argparse.Namespace) -> int:
    """Handler of ``clinical-viewer segment`` (see the module docstring). Returns the exit code."""
    from inference.package import find_package
    from viewer.dicom.load import pick_stack
    from viewer.dicom.scan import scan
    from viewer.export.atomic import ensure_folder

    out = Path(args.out)
    package = find_package(args.model)  # PackageError → exit 2 in viewer.cli
    ensure_folder(out)  # a read-only / impossible output folder is refused before any work
    result = scan(args.path)
    if args.series or len(result.stacks) <= 1:
        stack, notes = pick_stack(
            result, args.series
        )  # DicomError (nothing / unknown series) → exit 2
        for n in notes:
            print(f"note: {n}", file=sys.stderr)
        doc = segment_one(stack, package, args, out)
        for w in doc["domain_warnings"]:
            print(f"warning: outside the model's domain (run forced): {w}", file=sys.stderr)
        for c in doc["label_cautions"]:
            print(f"caution: {c}", file=sys.stderr)
        print(f"{out}: {_summary_line(doc)}")
        return 0
    rows: list[dict[str, Any]] = []
    codes: list[int] = []
    cautions: list[str] = []  # the model's label cautions, as every segmented series' stats.json has them
    stacks = result.stacks
    for i, stack in enumerate(stacks, start=1):
        sn = (
            stack.first.series_number
            if getattr(stack.first, "series_number", None) is not None
            else 0
        )
        name = f"{int(sn):03d}_{stack.stack_id}"
        print(
            f"[{i}/{len(stacks)}] {name}: {stack.modality} {stack.image_count} image(s)",
            file=sys.stderr,
        )
        try:
            doc = segment_one(stack, package, args, out / name)
        except Exception as exc:  # noqa: BLE001 - a batch continues past bad series
            user = is_user_error(exc)
            codes.append(2 if user else 1)
            if not user:
                log.exception("internal error on %s", name)
            print(f"  failed: {exc}", file=sys.stderr)
            rows.append(
                {
                    "folder": name,
                    "status": "bad input" if user else "internal error",
                    "error": str(exc),
                }
            )
            continue
        codes.append(0)
        cautions = doc["label_cautions"]
        print(f"{out / name}: {_summary_line(doc)}")
        rows.append(
            {
                "folder": name,
                "status": "ok",
                "domain_warnings": doc["domain_warnings"],
                "timings_s": doc["timings_s"],
            }
        )
    out.mkdir(parents=True, exist_ok=True)
    code = max(codes) if 1 not in codes else 1
    summary = {
        "tool": "clinical-viewer segment",
        "series": rows,
        "ok": codes.count(0),
        "failed": len(codes) - codes.count(0),
        "exit_code": code,
        "label_cautions": cautions,
    }
    for c in summary["label_cautions"]:
        print(f"caution: {c}", file=sys.stderr)
    (out / "summary.json").write_text(
        json.dumps(summary, indent=1, default=_json_default), encoding="utf-8"
    )
    print(
        f"segmented {codes.count(0)}/{len(codes)} series into {out}"
        + (f"; {len(codes) - codes.count(0)} failed (see summary.json)" if code else "")
    )
    return code
