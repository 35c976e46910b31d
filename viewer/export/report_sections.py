"""Sections of the PDF report as reportlab flowables (tables and paragraphs). No Qt.

Every dynamic string goes through :func:`esc` (reportlab paragraphs are XML markup) and, in an
anonymised report, through the caller's ``clean`` function first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, Spacer, Table, TableStyle

__all__ = ["Styles", "make_styles", "esc", "kv_table", "grid_table", "fmt", "stats_rows", "lesion_rows",
           "parity_flowables", "warning_box", "measurement_rows"]

CLEAN = Callable[[str], str]
GREY = colors.HexColor("#555555")
HEAD_BG = colors.HexColor("#dde4ee")
WARN_BG = colors.HexColor("#fff3cd")
WARN_EDGE = colors.HexColor("#c99700")
OK_BG = colors.HexColor("#e3f4e4")
FAIL_BG = colors.HexColor("#f8d7da")


@dataclass
class Styles:
    title: ParagraphStyle
    h2: ParagraphStyle
    body: ParagraphStyle
    small: ParagraphStyle
    cell: ParagraphStyle
    cell_bold: ParagraphStyle
    banner: ParagraphStyle


def make_styles(font: str, bold: str) -> Styles:
    base = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=base["BodyText"], fontName=font, fontSize=9, leading=11.5)
    return Styles(
        title=ParagraphStyle("title", parent=body, fontName=bold, fontSize=16, leading=20, spaceAfter=2),
        h2=ParagraphStyle("h2", parent=body, fontName=bold, fontSize=11.5, leading=14, spaceBefore=7, spaceAfter=3,
                          textColor=colors.HexColor("#1d3557")),
        body=body,
        small=ParagraphStyle("small", parent=body, fontSize=7.5, leading=9.5, textColor=GREY),
        cell=ParagraphStyle("cell", parent=body, fontSize=8, leading=10),
        cell_bold=ParagraphStyle("cellb", parent=body, fontName=bold, fontSize=8, leading=10),
        banner=ParagraphStyle("banner", parent=body, fontName=bold, fontSize=10, leading=13,
                              textColor=colors.HexColor("#8b0000")),
    )


def esc(text: object) -> str:
    """XML-escape any value for a reportlab Paragraph."""
    return escape(str(text))


def fmt(value: Any, digits: int = 1, unit: str = "") -> str:
    """Number with fixed decimals (and unit), or a dash for missing values."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        if value != value or value in (float("inf"), float("-inf")):  # nan / inf
            return "n/a" if value != value else ("inf" if value > 0 else "-inf")
        s = f"{value:.{digits}f}" if isinstance(value, float) or digits else str(value)
        return f"{s} {unit}".strip()
    return f"{value} {unit}".strip()


def _style(header: bool = True, zebra: bool = True) -> list[tuple]:
    cmds: list[tuple] = [
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#9aa5b1")),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
    ]
    if header:
        cmds.append(("BACKGROUND", (0, 0), (-1, 0), HEAD_BG))
    return cmds


def kv_table(pairs: Sequence[tuple[str, str]], st: Styles, width: float, columns: int = 2) -> Table:
    """Label/value pairs laid out in ``columns`` pairs per row (labels bold)."""
    rows, row = [], []
    for k, v in pairs:
        row += [Paragraph(esc(k), st.cell_bold), Paragraph(esc(v), st.cell)]
        if len(row) == 2 * columns:
            rows.append(row)
            row = []
    if row:
        rows.append(row + [""] * (2 * columns - len(row)))
    label_w = 30 * mm
    value_w = (width - columns * label_w) / columns
    t = Table(rows, colWidths=[label_w, value_w] * columns, hAlign="LEFT")
    t.setStyle(TableStyle([*_style(header=False), ("BACKGROUND", (0, 0), (0, -1), HEAD_BG)]
                          + [("BACKGROUND", (2 * i, 0), (2 * i, -1), HEAD_BG) for i in range(columns)]))
    return t


def grid_table(header: Sequence[str], rows: Sequence[Sequence[str]], st: Styles, widths: Sequence[float],
               row_colors: Sequence[Any | None] | None = None) -> Table:
    """A table with a header row; cells are wrapped paragraphs."""
    data = [[Paragraph(esc(h), st.cell_bold) for h in header]]
    data += [[Paragraph(esc(c), st.cell) for c in r] for r in rows]
    t = Table(data, colWidths=list(widths), hAlign="LEFT", repeatRows=1)
    cmds = _style()
    for i, c in enumerate(row_colors or []):
        if c is not None:
            cmds.append(("BACKGROUND", (0, i + 1), (-1, i + 1), c))
    t.setStyle(TableStyle(cmds))
    return t


def warning_box(title: str, lines: Sequence[str], st: Styles, width: float, ok_text: str) -> Table:
    """A yellow box listing warnings, or a green one saying ``ok_text`` when there are none."""
    if lines:
        body = [Paragraph(f"<b>{esc(title)}</b>", st.cell)] + [Paragraph("&bull; " + esc(s), st.cell) for s in lines]
        bg, edge = WARN_BG, WARN_EDGE
    else:
        body = [Paragraph(esc(ok_text), st.cell)]
        bg, edge = OK_BG, colors.HexColor("#4a8f4e")
    t = Table([[b] for b in body], colWidths=[width], hAlign="LEFT")
    t.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, -1), bg), ("BOX", (0, 0), (-1, -1), 0.8, edge),
                           ("TOPPADDING", (0, 0), (-1, -1), 1.2), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.2)]))
    return t


def _ai_final_lookup(ai_vs_final: Mapping[Any, Any] | None, value: int, name: str) -> tuple[Any, Any] | None:
    if not ai_vs_final:
        return None
    for key in (value, str(value), name):
        if key in ai_vs_final:
            v = ai_vs_final[key]
            if isinstance(v, Mapping):
                return v.get("ai_ml"), v.get("final_ml")
            return tuple(v)[:2]  # type: ignore[return-value]
    return None


def stats_rows(stats: Mapping[str, Any], ai_vs_final: Mapping[Any, Any] | None,
               clean: CLEAN) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the per-label statistics table (volumes mL, HU; AI vs final when given)."""
    header = ["Label", "Volume (mL)", "HU mean \u00b1 SD", "HU min / max", "Voxels"]
    if ai_vs_final:
        header += ["AI (mL)", "Final (mL)", "Change"]
    rows = []
    for e in stats.get("labels", []):
        hu = e.get("hu") or {}
        row = [clean(str(e.get("name", e.get("value")))), fmt(e.get("volume_ml"), 2),
               f"{fmt(hu.get('mean'), 0)} \u00b1 {fmt(hu.get('sd'), 0)}" if hu else "-",
               f"{fmt(hu.get('min'), 0)} / {fmt(hu.get('max'), 0)}" if hu else "-", str(e.get("voxels", "-"))]
        if ai_vs_final:
            pair = _ai_final_lookup(ai_vs_final, int(e.get("value", -1)), str(e.get("name", "")))
            if pair is None:
                row += ["-", "-", "-"]
            else:
                ai, final = pair
                change = "-"
                if isinstance(ai, (int, float)) and isinstance(final, (int, float)):
                    change = f"{final - ai:+.2f} mL" + (f" ({100 * (final - ai) / ai:+.1f} %)" if ai else "")
                row += [fmt(ai, 2), fmt(final, 2), change]
        rows.append(row)
    return header, rows


def lesion_rows(stats: Mapping[str, Any], nz: int, clean: CLEAN,
                max_rows: int = 30) -> tuple[list[list[str]], str]:
    """Rows of the lesion table (id, label, volume, longest axial diameter, slice, extent, HU), the
    largest ``max_rows`` components, and a note on the smaller ones left out ("" when none)."""
    rows = []
    comps = [(clean(str(entry.get("name", "lesion"))), c) for entry in stats.get("lesions", {}).values()
             for c in entry.get("components", [])]
    comps.sort(key=lambda nc: -float(nc[1].get("volume_ml") or 0.0))
    rest = comps[max_rows:]
    rest_ml = sum(float(c.get("volume_ml") or 0.0) for _, c in rest)
    note = f"{len(rest)} smaller component(s) not listed (together {rest_ml:.2f} mL)." if rest else ""
    for name, c in comps[:max_rows]:
        z = c.get("slice_index")
        zr = c.get("z_range") or [None, None]
        rows.append([
            str(c.get("id", len(rows) + 1)), name, fmt(c.get("volume_ml"), 2),
            fmt(c.get("longest_axial_diameter_mm"), 1),
            f"{int(z) + 1} / {nz}" if z is not None else "-",
            f"{int(zr[0]) + 1}-{int(zr[1]) + 1}" if zr[0] is not None else "-",
            fmt(c.get("hu_mean"), 0),
        ])
    return rows, note


_UNITS = {"mm": "mm", "mm2": "mm2", "cm2": "cm2", "ml": "mL", "hu": "HU"}


def _quantity(key: str, value: float) -> str:
    """``length_mm=17.2`` → ``length 17.2 mm``; unknown suffixes are kept in the name."""
    name, _, suffix = key.rpartition("_")
    if name and suffix.lower() in _UNITS:
        return f"{name.replace('_', ' ')} {fmt(value, 1)} {_UNITS[suffix.lower()]}"
    return f"{key.replace('_', ' ')} {fmt(value, 1)}"


def measurement_rows(measurements: Sequence[Mapping[str, Any]], clean: CLEAN) -> list[list[str]]:
    """Rows of the measurement table from dicts with ``kind``, ``slice``, ``text`` or numeric fields."""
    rows = []
    for i, m in enumerate(measurements, start=1):
        z = m.get("slice")
        if m.get("text"):
            desc = str(m["text"])
        else:
            parts = [_quantity(k, v) for k, v in m.items()
                     if k not in ("kind", "slice", "label", "points", "p0", "p1", "axis") and
                     isinstance(v, (int, float)) and not isinstance(v, bool)]
            desc = ", ".join(parts) or "-"
        rows.append([str(i), clean(str(m.get("kind", "measurement"))), clean(str(m.get("label", ""))),
                     f"{int(z) + 1}" if isinstance(z, (int, float)) else "-", clean(desc)])
    return rows


def parity_flowables(parity: Mapping[str, Any], st: Styles, width: float) -> list[Any]:
    """Verdict and per-pair figures of a PyTorch-vs-ONNX(-vs-INT8) comparison (``compare.json``)."""
    passed = bool(parity.get("passed"))
    engines = ", ".join(str(e) for e in parity.get("engines", []))
    out: list[Any] = []
    verdict = "PASS" if passed else "FAIL"
    head = f"<b>Verdict: {verdict}</b>"
    if engines:
        head += f" &mdash; engines {esc(engines)} (reference {esc(parity.get('reference', '-'))})"
    box = Table([[Paragraph(head, st.body)]], colWidths=[width], hAlign="LEFT")
    box.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, -1), OK_BG if passed else FAIL_BG),
                             ("BOX", (0, 0), (-1, -1), 0.8, colors.black)]))
    out.append(box)
    th = parity.get("thresholds") or {}
    if th:
        out.append(Paragraph(esc(f"Thresholds: Dice >= {th.get('dice_fp32', '-')} (FP32), >= {th.get('dice_int8', '-')} "
                                 f"(INT8); max flipped fraction {th.get('max_flip_fraction') or 'not set'}"),
                             st.small))
    pairs = parity.get("pairs", [])
    if pairs:
        rows, cols = [], []
        for p in pairs:
            dice = "; ".join(f"{lab.get('name')}: {fmt(lab.get('dice'), 4)}" for lab in p.get("labels", []))
            rows.append([f"{p.get('a')} vs {p.get('b')}", "PASS" if p.get("passed") else "FAIL",
                         fmt(p.get("min_dice"), 4), dice or "-",
                         f"{p.get('flips', '-')} ({fmt(100 * float(p.get('flip_fraction', 0.0)), 4)} %)",
                         fmt(p.get("logits_max_abs"), 6) if p.get("logits_max_abs") is not None else "-"])
            cols.append(OK_BG if p.get("passed") else FAIL_BG)
        out.append(Spacer(1, 2 * mm))
        out.append(grid_table(["Pair", "Verdict", "Min Dice", "Dice per label", "Flipped voxels", "Max |logit diff|"],
                              rows, st, [28 * mm, 16 * mm, 18 * mm, width - 120 * mm, 32 * mm, 26 * mm], cols))
        reasons = [r for p in pairs for r in p.get("reasons", [])]
        for r in reasons:
            out.append(Paragraph("&bull; " + esc(r), st.small))
    timing = parity.get("timing") or {}
    if timing:
        t = ", ".join(f"{n}: {fmt(v.get('per_slice_ms'), 1)} ms/slice" for n, v in timing.items())
        out.append(Paragraph(esc("Timing (same run): " + t), st.small))
    worst = parity.get("worst") or {}
    if worst:
        out.append(Paragraph(esc(f"Largest disagreement: {worst.get('a')} vs {worst.get('b')} on slice "
                                 f"{int(worst.get('original_slice', worst.get('slice', 0))) + 1} "
                                 f"({worst.get('flips', 0)} voxels)"), st.small))
    if parity.get("summary"):
        out.append(Paragraph(esc(parity["summary"]), st.body))
    return out
