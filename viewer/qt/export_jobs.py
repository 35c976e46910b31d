"""The export work behind File → Export, run in a worker (no widgets touched here).

:func:`run_export` writes one file of ``kind`` from an :class:`ExportContext` snapshot through the
export layer (``viewer/export``: atomic writes, typed :class:`viewer.errors.ExportError`), and
:func:`report_pdf` builds the PDF bytes for the preview. :func:`key_image_rgb` renders the
active view at full resolution on the GUI thread (cheap: one plane).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from viewer.errors import ExportError
from viewer.jobs import CancelCheck, Progress, check_cancel, report
from viewer.qt.export_sources import ExportContext

__all__ = [
    "DEFAULT_NAMES",
    "KINDS",
    "ExportOptions",
    "key_image_rgb",
    "person_name",
    "report_pdf",
    "run_export",
]

log = logging.getLogger(__name__)

#: kind → (menu text, default file name, file filter). Fixed names: never built from patient data.
KINDS: dict[str, tuple[str, str, str]] = {
    "report": ("Report (PDF)…", "report.pdf", "PDF (*.pdf)"),
    "seg": ("DICOM SEG…", "seg.dcm", "DICOM (*.dcm)"),
    "labels_nifti": ("Labels as NIfTI…", "labels.nii.gz", "NIfTI (*.nii.gz *.nii)"),
    "volume_nifti": ("Volume as NIfTI…", "volume.nii.gz", "NIfTI (*.nii.gz *.nii)"),
    "png": ("Key image (PNG)…", "key_image.png", "PNG (*.png)"),
}
DEFAULT_NAMES = {k: v[1] for k, v in KINDS.items()}
NEEDS_LABELS = {"seg", "labels_nifti"}


@dataclass
class ExportOptions:
    """Choices of the export dialog.

    ``key_rgb``: the PNG's pixels (uint8 [rows, cols, 3], rendered on the GUI thread).
    """

    anonymize: bool = False
    reader: str = ""
    review_state: str = ""
    include_gradcam: bool = True
    include_preprocess: bool = True
    key_rgb: np.ndarray | None = None


def key_image_rgb(view: Any, state: Any) -> np.ndarray:
    """The view's current plane with every visible overlay and the rulers on it, RGB uint8, at
    the series' full resolution (square pixels: resampled when row and column spacing differ)."""
    from viewer.export.png import Caliper, compose_key_image

    if view.geom is None:
        raise ExportError("No series is shown in the active view; open a series first.")
    view._dirty = True
    view.render_frame()
    rgb = np.ascontiguousarray(view._rgb)
    calipers = []
    for m in state.measurements_on(view.axis, view.index()):
        if m.kind == "ruler" and len(m.points) >= 2:
            length = m.result.get("length_mm")
            calipers.append(
                Caliper(
                    tuple(m.points[0]),
                    tuple(m.points[1]),
                    f"{length:.1f} mm" if length is not None else "",
                )
            )
    return compose_key_image(rgb, calipers=calipers, pixel_spacing=view.geom.spacing)


_PREFIXES = {"dr", "dr.", "prof", "prof.", "mr", "mr.", "mrs", "mrs.", "ms", "ms.", "doc.", "med."}


def person_name(text: str) -> str:
    """A reader's name as typed ("Dr Edith Reader") → DICOM PN ``Reader^Edith^^Dr``.

    Names already in PN form (with ``^``) are kept; a single word is the family name. Without this
    a PN with spaces and no ``^`` is the retired person-name form (dciodvfy warns).
    """
    text = " ".join(str(text).split())
    if not text or "^" in text:
        return text
    words = text.split(" ")
    prefix = []
    while len(words) > 1 and words[0].lower() in _PREFIXES:
        prefix.append(words.pop(0))
    family, given = words[-1], " ".join(words[:-1])
    return "^".join([family, given, "", " ".join(prefix)]).rstrip("^")


def _report_kwargs(ctx: ExportContext, opts: ExportOptions) -> dict[str, Any]:
    vol = ctx.volume
    labels = ctx.labels if ctx.labels is not None else np.zeros(vol.shape, np.uint8)
    model_info = None
    if ctx.model:
        model_info = dict(ctx.model)
        if ctx.result is not None:
            eng = ctx.result.engine
            model_info.update(
                {k: eng[k] for k in ("engine", "provider", "precision") if eng.get(k)}
            )
    notes = []
    if ctx.source == "seg":
        notes.append("Segmentation loaded from a DICOM SEG object of this study.")
    elif ctx.source == "":
        notes.append("No segmentation for this series: the report lists the series only.")
    return dict(
        volume=vol,
        labels=labels,
        result=ctx.result,
        stats=ctx.stats if ctx.source == "result" else None,
        model_info=model_info,
        labels_info=ctx.labels_info or None,
        domain_warnings=ctx.domain_warnings,
        parity=ctx.parity,
        gradcam=ctx.gradcam if opts.include_gradcam and ctx.gradcam else None,
        preprocess=ctx.preprocess if opts.include_preprocess and ctx.preprocess else None,
        measurements=ctx.measurements or None,
        reader=opts.reader or ctx.reader or None,
        review_state=opts.review_state or ctx.review_state or None,
        ai_vs_final=ctx.ai_vs_final,
        anonymize=opts.anonymize,
        notes=notes,
    )


def report_pdf(
    ctx: ExportContext,
    opts: ExportOptions,
    *,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
) -> bytes:
    """The report as PDF bytes (for the preview and for saving)."""
    from viewer.export.report import build_report

    if ctx.volume is None:
        raise ExportError("No series is open; open a series before exporting a report.")
    return build_report(**_report_kwargs(ctx, opts), progress=progress, cancel=cancel)


def _segments(ctx: ExportContext) -> list[Any]:
    from viewer.export.seg import segment_infos

    if ctx.segments:  # a loaded SEG: keep its segments (types, algorithm, codes) as they were
        return list(ctx.segments)
    return segment_infos(
        ctx.label_table, label_stats=ctx.label_stats, model=ctx.model, engine=ctx.engine
    )


def run_export(
    kind: str,
    path: str | Path,
    ctx: ExportContext,
    opts: ExportOptions,
    *,
    pdf: bytes | None = None,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
) -> Path:
    """Write one export of ``kind`` (see :data:`KINDS`) to ``path``; returns the path.

    ``pdf``: report bytes already built for the preview (saved as they are).

    Raises
    ------
    ExportError
        Nothing to export, or the file cannot be written (nothing half-written is left).
    Cancelled
        ``cancel()`` became true before the file was renamed into place.
    """
    path = Path(path)
    if kind not in KINDS:
        raise ExportError(f"unknown export kind {kind!r}; use one of {', '.join(KINDS)}")
    if ctx.volume is None:
        raise ExportError("No series is open; open a series before exporting.")
    if kind in NEEDS_LABELS and ctx.labels is None:
        raise ExportError(
            "This series has no segmentation to export: run a model, edit, or load a "
            "DICOM SEG first."
        )
    check_cancel(cancel)
    if kind == "report":
        from viewer.export.atomic import write_bytes_atomic

        data = pdf if pdf is not None else report_pdf(ctx, opts, progress=progress, cancel=cancel)
        check_cancel(cancel)
        write_bytes_atomic(path, data)
    elif kind == "seg":
        from viewer.export.seg import write_seg

        editors = ctx.source == "edits" and any(
            s.added_voxels or s.removed_voxels for s in (ctx.label_stats or [])
        )
        creator = (person_name(opts.reader or ctx.reader) or None) if editors else None
        write_seg(
            path,
            ctx.volume,
            ctx.labels,
            _segments(ctx),
            anonymize=opts.anonymize,
            content_creator_name=creator,
            progress=progress,
            cancel=cancel,
        )
    elif kind in ("labels_nifti", "volume_nifti"):
        from viewer.export.nifti import write_nifti

        report(progress, 0, 1, "writing NIfTI")
        if kind == "labels_nifti":
            write_nifti(ctx.labels, path, volume=ctx.volume)
        else:
            write_nifti(ctx.volume, path)
        report(progress, 1, 1, "NIfTI written")
    else:
        from viewer.export.png import write_png

        if opts.key_rgb is None:
            raise ExportError("No key image was rendered; show a series in the active view.")
        report(progress, 0, 1, "writing PNG")
        write_png(path, opts.key_rgb)
        report(progress, 1, 1, "PNG written")
    log.info("exported %s", kind)
    return path
