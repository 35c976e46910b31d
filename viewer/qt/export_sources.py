"""What an export from the GUI contains: gathered from the window's panels on the GUI thread.

:func:`gather` snapshots (copies) everything the export jobs need, so the worker never touches
widgets or arrays the reader may still be editing. The label map is, in this order:

1. the reader's edits of this series (``win.edit.session.seg``: final labels, label table with
   sources, AI-vs-final statistics, reader name and review state);
2. the segmentation dock's result of this series (``win.segmentation.results[series_key]``, as
   shown: re-thresholded when the slider moved);
3. a DICOM SEG loaded from the study folder (:mod:`viewer.qt.seg_overlay`).

Optional report material, read from other panels' public attributes when they exist:
measurements (``state.measurements``), the parity result of the Compare-engines dock for this
series (``win.compare.results[key].result``), the heatmap layers shown on the series (the Explain
dock's Grad-CAM adds method, target, layer and region from ``win.explain.gradcam.last``) and the
Explain dock's preprocessing preview as displayed (``win.explain.preprocess.displayed``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from viewer.state import HeatmapLayer, LabelLayer

if TYPE_CHECKING:  # pragma: no cover
    from viewer.qt.main_window import MainWindow

__all__ = ["ExportContext", "gather", "measurement_dicts", "review_text"]

log = logging.getLogger(__name__)

AXES = ("axial", "coronal", "sagittal")
REVIEW_TEXT = {
    "not_reviewed": "not reviewed",
    "reviewed": "reviewed",
    "needs_attention": "needs attention",
}


@dataclass
class ExportContext:
    """A snapshot of the current series and its results (arrays are copies).

    ``labels`` uint8 [z, y, x] or None; ``labels_info`` value → ``{"name", "color"}``;
    ``label_table`` dicts with ``value``, ``name``, ``color``, ``source`` for
    :func:`viewer.export.seg.segment_infos`; ``label_stats`` the editor's AI-vs-final figures.
    """

    volume: Any
    series_key: str = ""
    labels: np.ndarray | None = None
    source: str = ""  # "edits" | "result" | "seg" | ""
    labels_info: dict[int, dict[str, Any]] = field(default_factory=dict)
    label_table: list[dict[str, Any]] = field(default_factory=list)
    label_stats: list[Any] | None = None
    segments: list[Any] | None = None  # SegmentInfo list of a loaded SEG (kept as they were)
    result: Any = None
    stats: dict[str, Any] | None = None
    model: dict[str, Any] = field(default_factory=dict)
    engine: str = ""
    reader: str = ""
    review_state: str = ""
    ai_vs_final: dict[Any, tuple[float, float]] | None = None
    measurements: list[dict[str, Any]] = field(default_factory=list)
    parity: dict[str, Any] | None = None
    gradcam: list[dict[str, Any]] = field(default_factory=list)
    preprocess: list[dict[str, Any]] = field(default_factory=list)
    domain_warnings: list[str] = field(default_factory=list)

    @property
    def has_labels(self) -> bool:
        return self.labels is not None


def review_text(review_state: Any, edited: bool) -> str:
    """``"edited, reviewed"`` etc. from a :class:`viewer.masks_labels.ReviewState` value."""
    state = REVIEW_TEXT.get(str(getattr(review_state, "value", review_state)), str(review_state))
    return f"{'edited' if edited else 'AI result'}, {state}"


def measurement_dicts(measurements: list[Any]) -> list[dict[str, Any]]:
    """``state.measurements`` → rows for the report (``slice`` is the z index for axial ones)."""
    out = []
    for m in measurements:
        d: dict[str, Any] = {"kind": m.kind, "label": f"{AXES[m.axis]} {m.index + 1}"}
        if m.axis == 0:
            d["slice"] = int(m.index)
        for k, v in (m.result or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                d[k] = float(v)
        out.append(d)
    return out


def _panel(win: Any, *names: str) -> Any:
    for n in names:
        p = getattr(win, n, None)
        if p is not None:
            return p
    return None


def _parity(win: Any, key: str) -> dict[str, Any] | None:
    panel = _panel(win, "compare_panel", "compare")
    if panel is None:
        return None
    res = None
    try:
        if hasattr(panel, "result_for"):
            res = panel.result_for(key)
        elif isinstance(getattr(panel, "results", None), dict):
            res = panel.results.get(key)
    except Exception:  # noqa: BLE001 - another panel's problem must not block an export
        log.exception("comparison result unavailable")
        return None
    if res is None:
        return None
    res = getattr(res, "result", res)  # an entry wrapping the ComparisonResult
    if hasattr(res, "to_dict"):
        try:
            return dict(res.to_dict(per_slice=False))
        except TypeError:
            return dict(res.to_dict())
    return dict(res) if isinstance(res, dict) else None


def _gradcam_views(win: Any, state: Any) -> list[dict[str, Any]]:
    """Heatmap layers shown on the series; the Explain dock's Grad-CAM adds its parameters."""
    last = getattr(getattr(getattr(win, "explain", None), "gradcam", None), "last", None) or {}
    out = []
    for name, layer in state.layers.items():
        if not (isinstance(layer, HeatmapLayer) and layer.visible):
            continue
        flat = layer.heat.ndim == 2
        z = int(layer.z if flat and layer.z is not None else state.cursor[0])
        view: dict[str, Any] = {
            "slice": z,
            "heatmap": np.array(layer.heat if flat else layer.heat[z], np.float32),
            "method": name,
        }
        if name == "gradcam" and last.get("series") == state.series_key:
            from viewer.qt.analysis_gradcam import METHOD_NAMES, REGIONS

            view.update(
                method=METHOD_NAMES.get(last.get("method"), str(last.get("method"))),
                target=str(last.get("label_name", "")),
                layer=str(last.get("layer") or "default"),
                region=REGIONS.get(last.get("region"), str(last.get("region"))),
                model=str(last.get("model", "")),
                scope="whole series" if last.get("slice") is None else "this slice",
            )
        view["colour map"] = layer.cmap
        out.append(view)
    return out


def _preprocess_views(win: Any, state: Any) -> list[dict[str, Any]]:
    """The Explain dock's preprocessing preview as shown (image + filter parameters)."""
    pp = getattr(getattr(win, "explain", None), "preprocess", None)
    shown = getattr(pp, "displayed", None)
    vol = state.volume
    if pp is None or not shown or vol is None:
        return []
    from viewer.display import RGBAPlane, composite, window_to_uint8
    from viewer.preprocess import describe
    from viewer.qt.analysis_preprocess import OVERLAY_LAYER, PREVIEW_LAYER

    overlay = shown.get("mode") == "overlay"
    layer = (state if overlay else pp.linked_state).layers.get(
        OVERLAY_LAYER if overlay else PREVIEW_LAYER
    )
    z = int(shown.get("slice", -1))
    rgba = getattr(layer, "rgba", None)
    if layer is None or getattr(layer, "z", None) != z or rgba is None or rgba.ndim != 3:
        return []
    c, w = shown.get("window", state.window)
    if overlay:
        gray = window_to_uint8(vol.voxels[z], c, w, invert=vol.meta.invert)
        rgb = composite(gray, [RGBAPlane(rgba, layer.opacity)])
    else:
        rgb = np.ascontiguousarray(rgba[..., :3])
    d = describe(shown["filter"], shown.get("params"))
    view: dict[str, Any] = {
        "image": rgb,
        "title": f"Preprocessing: {d['label']} (axial slice {z + 1}/{vol.shape[0]})",
        "filter": d["label"],
        "input": d["input"],
        "window": f"W {w:.0f} L {c:.0f}",
        "mode": shown.get("mode", ""),
    }
    view.update({k: v for k, v in d["params"].items() if isinstance(v, (int, float))})
    return [view]


def gather(win: MainWindow) -> ExportContext:
    """Snapshot of the current series for an export (GUI thread)."""
    from viewer.qt.seg_overlay import SEG_OVERLAY_PREFIX

    st = win.state
    ctx = ExportContext(volume=st.volume, series_key=st.series_key)
    if st.volume is None:
        return ctx
    entry = getattr(getattr(win, "segmentation", None), "results", {}).get(st.series_key)
    if entry is not None:
        res = entry.result
        ctx.result = res
        ctx.model = {k: res.model.get(k) for k in ("name", "version", "sha256") if res.model.get(k)}
        ctx.engine = " ".join(
            str(res.engine.get(k)) for k in ("engine", "provider") if res.engine.get(k)
        )
        ctx.domain_warnings = [str(w) for w in res.domain_warnings]
    ctrl = getattr(win, "edit", None)
    session = getattr(ctrl, "session", None) if ctrl is not None else None
    seg = getattr(session, "seg", None)
    if ctrl is not None:
        ctx.reader = str(getattr(ctrl, "reader", "") or "")
    if seg is not None:
        with seg.lock:
            ctx.labels = np.array(seg.current, np.uint8, copy=True)
            table = seg.labels
        ctx.source = "edits"
        ctx.label_stats = seg.label_stats()
        ctx.label_table = [
            {"value": v, "name": i.name, "color": tuple(i.color), "source": str(i.source)}
            for v, i in table.items()
        ]
        ctx.labels_info = {v: {"name": i.name, "color": tuple(i.color)} for v, i in table.items()}
        ctx.reader = str(seg.reader or ctx.reader)
        edited = any(s.added_voxels or s.removed_voxels for s in ctx.label_stats)
        ctx.review_state = review_text(seg.review_state, edited)
        ctx.ai_vs_final = {s.name: (float(s.ai_ml), float(s.final_ml)) for s in ctx.label_stats}
    elif entry is not None:
        layer = entry.layer
        ctx.labels = np.array(layer.current_labels(), np.uint8, copy=True)
        ctx.source = "result"
        ctx.stats = entry.stats
        ctx.labels_info = {
            v: {"name": n, "color": tuple(layer.colors.get(v, (255, 0, 0)))}
            for v, n in layer.names.items()
            if v
        }
        ctx.label_table = [dict(value=v, source="ai", **i) for v, i in ctx.labels_info.items()]
        ctx.review_state = "AI result, not reviewed"
    else:
        seg_layer = next(
            (
                lay
                for name, lay in st.layers.items()
                if name.startswith(SEG_OVERLAY_PREFIX)
                and isinstance(lay, LabelLayer)
                and lay.visible
            ),
            None,
        )
        if seg_layer is not None:
            ctx.labels = np.array(seg_layer.labels, np.uint8, copy=True)
            ctx.source = "seg"
            ctx.labels_info = {
                v: {"name": n, "color": tuple(seg_layer.colors.get(v, (255, 0, 0)))}
                for v, n in seg_layer.names.items()
                if v
            }
            ctx.segments = list(getattr(seg_layer, "segments", None) or []) or None
            ctx.label_table = [dict(value=v, source="ai", **i) for v, i in ctx.labels_info.items()]
    ctx.measurements = measurement_dicts(list(st.measurements))
    ctx.parity = _parity(win, st.series_key)
    ctx.gradcam = _gradcam_views(win, st)
    ctx.preprocess = _preprocess_views(win, st)
    return ctx
