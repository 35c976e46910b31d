"""The annotated PDF report a radiologist signs off (reportlab). No Qt.

Contents, in order: title and the "not for diagnostic use without physician review" banner;
study and series identification (or, anonymised, a pseudonym and the session's replacement
UIDs); report date; model name, version, SHA-256 and engine; reader and review state;
domain-check and loader warnings; the statistics table (volume in mL and HU per label, AI vs
final volume when given); the lesion table (volume, longest axial diameter, slice); reader
measurements; the PyTorch-vs-ONNX parity verdict when a comparison was run; key images with the
mask overlay (chosen automatically unless given); Grad-CAM / preprocessing views with their
parameters. Every page carries the disclaimer, the page number and the generation time.

:func:`build_report` returns the PDF bytes (the GUI previews them); :func:`write_report` writes
them atomically. With ``anonymize=True`` no patient name, ID, birth date, study/series
description or file path is written anywhere in the file (text, metadata, images).
"""

from __future__ import annotations

import datetime as _dt
import io
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Image, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from viewer.anonymize import Anonymizer, identifiers_of, session_anonymizer
from viewer.export.atomic import write_bytes_atomic
from viewer.export.png import encode_png
from viewer.export.report_images import KeyImage, auto_key_images, label_styles, render_heatmap_view
from viewer.export.report_sections import (
    Styles,
    esc,
    fmt,
    grid_table,
    kv_table,
    lesion_rows,
    make_styles,
    measurement_rows,
    parity_flowables,
    stats_rows,
    warning_box,
)
from viewer.jobs import CancelCheck, Progress, check_cancel, report
from viewer.volume import Volume

__all__ = ["build_report", "write_report", "DISCLAIMER"]

log = logging.getLogger(__name__)

DISCLAIMER = "Not for diagnostic use without physician review."
PAGE_W, PAGE_H = A4
MARGIN = 15 * mm
WIDTH = PAGE_W - 2 * MARGIN
_FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/local/share/fonts",
              "/Library/Fonts", "C:/Windows/Fonts")


def _fonts() -> tuple[str, str]:
    """Register a Unicode TrueType font (DejaVu Sans, else reportlab's bundled Vera); return names."""
    if "CV-Sans" in pdfmetrics.getRegisteredFontNames():
        return "CV-Sans", "CV-Sans-Bold"
    candidates = [(Path(d) / "DejaVuSans.ttf", Path(d) / "DejaVuSans-Bold.ttf") for d in _FONT_DIRS]
    import reportlab

    rl = Path(reportlab.__file__).parent / "fonts"
    candidates.append((rl / "Vera.ttf", rl / "VeraBd.ttf"))
    for regular, bold in candidates:
        if regular.is_file() and bold.is_file():
            pdfmetrics.registerFont(TTFont("CV-Sans", str(regular)))
            pdfmetrics.registerFont(TTFont("CV-Sans-Bold", str(bold)))
            return "CV-Sans", "CV-Sans-Bold"
    return "Helvetica", "Helvetica-Bold"  # pragma: no cover - reportlab always ships Vera


def _numbered_canvas(font: str, stamp: str) -> type[Canvas]:
    class NumberedCanvas(Canvas):
        """Draws the footer (disclaimer, page x of y) once the page count is known."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:  # noqa: N802 - reportlab API
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            n = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self._footer(n)
                super().showPage()
            super().save()

        def _footer(self, total: int) -> None:
            self.saveState()
            self.setStrokeColorRGB(0.55, 0.0, 0.0)
            self.setLineWidth(0.6)
            self.line(MARGIN, 14 * mm, PAGE_W - MARGIN, 14 * mm)
            self.setFillColorRGB(0.55, 0.0, 0.0)
            self.setFont(font + "-Bold" if font.startswith("CV") else "Helvetica-Bold", 8.5)
            self.drawString(MARGIN, 10 * mm, DISCLAIMER)
            self.setFillColorRGB(0.3, 0.3, 0.3)
            self.setFont(font, 7.5)
            self.drawRightString(PAGE_W - MARGIN, 10 * mm, f"Page {self._pageNumber} of {total}")
            self.drawString(MARGIN, 6.5 * mm, stamp)
            self.restoreState()

    return NumberedCanvas


def _cleaner(anonymize: bool, volume: Volume) -> Callable[[str], str]:
    """Free text → text fit for the report; anonymised: identifiers and file paths removed."""
    if not anonymize:
        return lambda s: s
    m = volume.meta
    idents = identifiers_of(patient_name=m.patient_name, patient_id=m.patient_id, birth_date=m.patient_birth_date,
                            extra=[s for s in (m.study_description, m.series_description) if len(s) >= 4])
    pats = [re.compile(re.escape(i), re.I) for i in sorted(idents, key=len, reverse=True)]
    # any token with a path separator and a letter (absolute or relative paths, C:\\...); "23/40" stays
    path_re = re.compile(r"[^\s'\"()<>|,;]*[\\/][^\s'\"()<>|,;]*")

    def _path(m: re.Match[str]) -> str:
        return "[path removed]" if re.search(r"[A-Za-z]", m.group(0)) else m.group(0)

    def clean(s: str) -> str:
        s = path_re.sub(_path, str(s))
        for p in pats:
            s = p.sub("[removed]", s)
        return s

    return clean


def _image(rgb: np.ndarray, max_w: float, max_h: float) -> Image:
    h, w = rgb.shape[:2]
    k = min(max_w / w, max_h / h)
    return Image(io.BytesIO(encode_png(rgb, compression=3)), width=w * k, height=h * k)


def _is_wide(ki: KeyImage) -> bool:
    return ki.rgb.shape[1] > 1.6 * ki.rgb.shape[0]


def _captioned(ki: KeyImage, st: Styles, clean: Callable[[str], str], max_w: float, max_h: float) -> list[Any]:
    parts: list[Any] = [_image(ki.rgb, max_w, max_h), Paragraph(f"<b>{esc(clean(ki.title))}</b>", st.cell)]
    if ki.note:
        parts.append(Paragraph(esc(clean(ki.note)), st.small))
    if ki.params:
        text = "; ".join(f"{k}: {v}" for k, v in ki.params.items() if k != "title")
        parts.append(Paragraph(esc(clean(text)), st.small))
    return parts


def _key_image_grid(images: Sequence[KeyImage], st: Styles, clean: Callable[[str], str]) -> list[list[Any]]:
    """Rows of two images with captions (wide figures, e.g. A | B | difference panels, get a
    full-width row); each row is a list of flowables to keep together."""
    rows: list[list[KeyImage]] = []
    for ki in images:
        if not _is_wide(ki) and rows and len(rows[-1]) == 1 and not _is_wide(rows[-1][0]):
            rows[-1].append(ki)
        else:
            rows.append([ki])
    out: list[list[Any]] = []
    cell_w = (WIDTH - 6 * mm) / 2
    for row in rows:
        if _is_wide(row[0]):
            out.append([*_captioned(row[0], st, clean, WIDTH, 120 * mm), Spacer(1, 3 * mm)])
            continue
        cells: list[Any] = [_captioned(ki, st, clean, cell_w, 95 * mm) for ki in row]
        if len(cells) == 1:
            cells.append("")
        t = Table([cells], colWidths=[cell_w + 3 * mm] * 2, hAlign="LEFT")
        t.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
        out.append([t, Spacer(1, 3 * mm)])
    return out


def _as_key_images(items: Sequence[Any]) -> list[KeyImage]:
    out = []
    for it in items:
        if isinstance(it, KeyImage):
            out.append(it)
        else:
            title, rgb = it[0], it[1]
            out.append(KeyImage(str(title), np.asarray(rgb, np.uint8), note=str(it[2]) if len(it) > 2 else ""))
    return out


def _identification(volume: Volume, anonymize: bool, anonymizer: Anonymizer | None,
                    created: _dt.datetime) -> list[tuple[str, str]]:
    m = volume.meta
    nz, ny, nx = volume.shape
    sz, sy, sx = volume.spacing
    geometry = f"{nx} x {ny} x {nz} voxels, {sx:.3g} x {sy:.3g} x {sz:.3g} mm"
    if anonymize:
        a = (anonymizer or session_anonymizer()).meta(m)
        return [("Patient", f"anonymised ({a.patient_id})"), ("Modality", m.modality or "-"),
                ("Study UID", a.study_instance_uid or "-"), ("Series UID", a.series_instance_uid or "-"),
                ("Image grid", geometry), ("Report date", created.strftime("%Y-%m-%d %H:%M UTC")),
                ("De-identified", "DICOM PS3.15 basic profile; UIDs replaced consistently with the SEG")]
    study_date = m.study_date
    if re.fullmatch(r"\d{8}", study_date or ""):
        study_date = f"{study_date[:4]}-{study_date[4:6]}-{study_date[6:]}"
    birth = m.patient_birth_date
    if re.fullmatch(r"\d{8}", birth or ""):
        birth = f"{birth[:4]}-{birth[4:6]}-{birth[6:]}"
    series = m.series_description or "-"
    if m.series_number is not None:
        series = f"{series} (#{m.series_number})"
    return [("Patient", m.patient_name.replace("^", " ").strip() or "-"), ("Patient ID", m.patient_id or "-"),
            ("Birth date", birth or "-"), ("Sex", m.patient_sex or "-"),
            ("Study", m.study_description or "-"), ("Study date", study_date or "-"),
            ("Series", series), ("Modality", m.modality or "-"),
            ("Study UID", m.study_instance_uid or "-"), ("Series UID", m.series_instance_uid or "-"),
            ("Image grid", geometry), ("Report date", created.strftime("%Y-%m-%d %H:%M UTC"))]


def _model_pairs(model_info: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    mi = dict(model_info or {})
    sha = str(mi.pop("sha256", "") or "")
    pairs = [("Model", str(mi.pop("name", "-"))), ("Version", str(mi.pop("version", "-"))),
             ("SHA-256", f"{sha[:16]}..." if len(sha) > 16 else (sha or "-")),
             ("Engine", " / ".join(str(mi.pop(k)) for k in ("engine", "provider", "precision") if mi.get(k)) or "-")]
    for k, v in mi.items():
        if isinstance(v, (str, int, float)) and not isinstance(v, bool):
            pairs.append((k.replace("_", " ").capitalize(), str(v)))
    return pairs


def _messages(items: Sequence[Any] | None) -> list[str]:
    out = []
    for w in items or []:
        if isinstance(w, str):
            out.append(w)
        elif isinstance(w, Mapping):
            out.append(str(w.get("message") or w.get("text") or w))
        else:
            out.append(str(getattr(w, "message", w)))
    return out


def _from_result(result: Any, labels: np.ndarray | None, model_info: Mapping[str, Any] | None,
                 labels_info: Mapping[int, Any] | None, domain_warnings: Sequence[Any] | None,
                 label_cautions: Sequence[str] | None) -> tuple[Any, ...]:
    """Fill unset arguments from a pipeline ``SegmentationResult`` (duck-typed: labels, model,
    engine, label_names, label_colors, domain_warnings, caution_lines())."""
    if result is None:
        return labels, model_info, labels_info, domain_warnings, label_cautions
    if labels is None:
        labels = result.labels
    if model_info is None:
        model = dict(getattr(result, "model", {}) or {})
        engine = dict(getattr(result, "engine", {}) or {})
        model_info = {k: model.get(k) for k in ("name", "version", "sha256")}
        model_info.update({k: engine[k] for k in ("engine", "provider", "precision", "threads") if engine.get(k)})
    if labels_info is None:
        colors = getattr(result, "label_colors", {}) or {}
        labels_info = {int(v): {"name": n, "color": colors.get(v)} for v, n in result.label_names.items() if int(v)}
    if domain_warnings is None:
        domain_warnings = list(getattr(result, "domain_warnings", []) or [])
    if label_cautions is None and hasattr(result, "caution_lines"):
        label_cautions = result.caution_lines()
    return labels, model_info, labels_info, domain_warnings, label_cautions


def build_report(*, volume: Volume, labels: np.ndarray | None = None, result: Any = None,
                 stats: Mapping[str, Any] | None = None,
                 model_info: Mapping[str, Any] | None = None, labels_info: Mapping[int, Any] | None = None,
                 key_images: Sequence[Any] | None = None, domain_warnings: Sequence[Any] | None = None,
                 parity: Mapping[str, Any] | None = None, gradcam: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
                 preprocess: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
                 measurements: Sequence[Mapping[str, Any]] | None = None, reader: str | None = None,
                 review_state: str | None = None, ai_vs_final: Mapping[Any, Any] | None = None,
                 anonymize: bool = False, anonymizer: Anonymizer | None = None,
                 title: str = "AI segmentation report", notes: Sequence[str] = (),
                 created: _dt.datetime | None = None, progress: Progress | None = None,
                 cancel: CancelCheck | None = None, label_cautions: Sequence[str] | None = None) -> bytes:
    """The report as PDF bytes. Arguments as in :func:`write_report`."""
    labels, model_info, labels_info, domain_warnings, label_cautions = _from_result(
        result, labels, model_info, labels_info, domain_warnings, label_cautions)
    if labels is None:
        raise ValueError("build_report needs labels= (or result= with .labels)")
    labels = np.asarray(labels)
    if labels.shape != volume.shape:
        raise ValueError(f"label map shape {labels.shape} does not match the volume {volume.shape} ([z, y, x])")
    created = created or _dt.datetime.now(_dt.timezone.utc)
    font, bold = _fonts()
    st = make_styles(font, bold)
    clean = _cleaner(anonymize, volume)
    styles = label_styles(labels_info)
    report(progress, 0, 4, "statistics")
    if stats is None:
        from viewer.segstats import segment_statistics

        stats = segment_statistics(labels, None if volume.is_rgb else volume.voxels, volume.spacing,
                                   label_names={v: s.name for v, s in styles.items()} or None)
    story: list[Any] = [Paragraph(esc(clean(title)), st.title),
                        Paragraph(esc(DISCLAIMER) + " AI output; the reader decides.", st.banner), Spacer(1, 2 * mm)]
    ident = _identification(volume, anonymize, anonymizer, created)
    uids = [kv for kv in ident if kv[0].endswith("UID")]  # full width: a UID must not wrap
    story += [Paragraph("Study and series", st.h2),
              kv_table([kv for kv in ident if kv not in uids], st, WIDTH), kv_table(uids, st, WIDTH, columns=1)]
    story += [Paragraph("Model", st.h2), kv_table(_model_pairs(model_info), st, WIDTH)]
    story += [Paragraph("Review", st.h2), kv_table(
        [("Reader", clean(reader) if reader else "not assigned"),
         ("Review state", clean(review_state) if review_state else "AI result, not reviewed")], st, WIDTH)]
    story += [Paragraph("Checks", st.h2),
              warning_box("Domain check warnings (is this series what the model was trained on?)",
                          [clean(s) for s in _messages(domain_warnings)], st, WIDTH,
                          "Domain check: no warnings.")]
    if label_cautions:
        story += [Spacer(1, 1.5 * mm), warning_box("Model label cautions (from the model package)",
                                                   [clean(s) for s in label_cautions], st, WIDTH, "")]
    if volume.warnings:
        story += [Spacer(1, 1.5 * mm), warning_box("Series loading warnings", [clean(s) for s in volume.warnings],
                                                   st, WIDTH, "")]
    header, rows = stats_rows(stats, ai_vs_final, clean)
    story.append(Paragraph("Statistics", st.h2))
    if rows:
        n = len(header)
        first = 36 * mm
        story.append(grid_table(header, rows, st, [first] + [(WIDTH - first) / (n - 1)] * (n - 1)))
    else:
        story.append(Paragraph("No segmented structures.", st.body))
    les, les_note = lesion_rows(stats, volume.shape[0], clean)
    if stats.get("lesions"):
        story.append(Paragraph("Lesions", st.h2))
        if les:
            story.append(grid_table(["#", "Label", "Volume (mL)", "Longest axial diameter (mm)", "Measured on slice",
                                     "Slices", "HU mean"], les, st,
                                    [10 * mm, 34 * mm, 22 * mm, 36 * mm, 28 * mm, 26 * mm, 24 * mm]))
            if les_note:
                story.append(Paragraph(esc(les_note), st.small))
        else:
            story.append(Paragraph("No lesion found by the model.", st.body))
    if measurements:
        story += [Paragraph("Measurements", st.h2),
                  grid_table(["#", "Kind", "Label", "Slice", "Result"], measurement_rows(measurements, clean), st,
                             [10 * mm, 25 * mm, 35 * mm, 15 * mm, WIDTH - 85 * mm])]
    if parity:
        story += [Paragraph("PyTorch vs ONNX parity", st.h2), *parity_flowables(parity, st, WIDTH)]
    for line in notes:
        story.append(Paragraph(esc(clean(line)), st.body))
    check_cancel(cancel)
    report(progress, 1, 4, "key images")
    images = _as_key_images(key_images) if key_images is not None else auto_key_images(
        volume, labels, labels_info=labels_info, stats=stats)
    if images:
        legend = ", ".join(f"{s.name}" for s in styles.values())
        grid = _key_image_grid(images, st, clean)
        story += [KeepTogether([Paragraph("Key images", st.h2),
                                Paragraph(esc(clean(f"Mask overlay ({legend})." if legend else "Mask overlay.")),
                                          st.small), Spacer(1, 1.5 * mm), *grid[0]]),
                  *[KeepTogether(row) for row in grid[1:]]]
    check_cancel(cancel)
    report(progress, 2, 4, "explanation views")
    views: list[KeyImage] = []
    for g in ([gradcam] if isinstance(gradcam, Mapping) else list(gradcam or [])):
        views.append(render_heatmap_view(volume, labels, g, labels_info=labels_info))
    for p in ([preprocess] if isinstance(preprocess, Mapping) else list(preprocess or [])):
        params = {k: v for k, v in p.items() if k not in ("image", "title")}
        views.append(KeyImage(str(p.get("title") or f"Preprocessing: {p.get('name', 'view')}"),
                              np.asarray(p["image"], np.uint8), params=params))
    if views:
        grid = _key_image_grid(views, st, clean)
        story += [KeepTogether([Paragraph("Explanation and preprocessing views", st.h2),
                                Paragraph("What the model looked at (heatmaps) and image filters, with their "
                                          "parameters. They explain the result; they are not findings.", st.small),
                                Spacer(1, 1.5 * mm), *grid[0]]), *[KeepTogether(row) for row in grid[1:]]]
    check_cancel(cancel)
    report(progress, 3, 4, "page layout")
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                            bottomMargin=20 * mm, title=title if not anonymize else "AI segmentation report",
                            author="clinical-viewer", subject="", creator="clinical-viewer", keywords="")
    stamp = f"clinical-viewer {fmt('0.1.0')} - generated {created.strftime('%Y-%m-%d %H:%M UTC')}"
    doc.build(story, canvasmaker=_numbered_canvas(font, stamp))
    report(progress, 4, 4, "report ready")
    return buf.getvalue()


def write_report(path: str | Path, **kwargs: Any) -> Path:
    """Write the PDF report atomically and return its path.

    Parameters
    ----------
    path : output ``.pdf``.
    volume : the series (``Volume``); labels : uint8 [z, y, x] final label map.
    result : a pipeline ``SegmentationResult``; fills ``labels``, ``model_info``,
        ``labels_info`` and ``domain_warnings`` where those are not given.
    stats : :func:`viewer.segstats.segment_statistics` output (computed when None).
    model_info : ``name``, ``version``, ``sha256``, ``engine`` (+ ``provider``, ``precision``,
        other scalar fields are listed too).
    labels_info : value → ``{"name", "color"}`` (or ``SegmentInfo``) for names and overlay colours.
    key_images : list of ``(title, rgb uint8 [y, x, 3][, note])`` or ``KeyImage``; None: automatic.
    domain_warnings : strings (or objects with ``.message``) from the domain check.
    label_cautions : ``"<label>: <caution>"`` lines (default: ``result.caution_lines()``), printed
        under the checks: what the model's package says a label's output cannot be trusted for.
    parity : ``ComparisonResult.to_dict()`` of a PyTorch-vs-ONNX comparison, or None.
    gradcam : one or more ``{"slice", "heatmap" [y, x] in 0..1 | "image", params...}``.
    preprocess : one or more ``{"image" RGB, "name", params...}``.
    measurements : dicts with ``kind``, ``slice`` (z index), ``label``, ``text`` or numbers.
    reader, review_state : who reviewed, and how far (e.g. "edited, not signed").
    ai_vs_final : label value or name → ``(ai_ml, final_ml)`` or ``{"ai_ml", "final_ml"}``.
    anonymize : no patient identifiers, descriptions or paths anywhere in the PDF. The UIDs
        shown come from ``anonymizer`` (default :func:`viewer.anonymize.session_anonymizer`,
        the same one the SEG export uses), so they match the anonymised SEG.
    progress, cancel : job protocol (:mod:`viewer.jobs`); ``Cancelled`` between stages, nothing
        is written then.

    Raises
    ------
    ExportError
        The file cannot be written (nothing half-written is left).
    """
    data = build_report(**kwargs)
    write_bytes_atomic(path, data)
    log.info("wrote PDF report (%d kB)", len(data) // 1024)
    return Path(path)
