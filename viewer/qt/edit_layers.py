"""Overlay layers of the reader's edits (no Qt: plain :mod:`viewer.state` layers).

* :data:`EDIT_LAYER` – a :class:`~viewer.state.LabelLayer` whose ``labels`` *is*
  ``EditableSegmentation.current`` (shared, changed in place by the edit tools), coloured from the
  segmentation's label table (AI labels and labels the reader added).
* :data:`PROV_LAYER` – a :class:`ProvenanceLayer`: per-pixel provenance of the shown plane, coloured
  as the AI proposed / added / removed / relabelled (:data:`PROV_COLORS`), computed on the fly from
  ``seg.provenance_plane`` (one plane: ~1 ms at 512²).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from viewer.display import LabelPlane, pack_palette
from viewer.masks import EditableSegmentation
from viewer.state import LabelLayer, Layer, cut

__all__ = [
    "EDIT_LAYER",
    "PROV_CLASSES",
    "PROV_COLORS",
    "PROV_LAYER",
    "ProvenanceLayer",
    "edit_layer",
    "provenance_display_codes",
    "sync_edit_layer",
]

EDIT_LAYER = "edits"
PROV_LAYER = "provenance"
#: display code → (name, RGB); code 0 (background as the AI proposed) is transparent
PROV_CLASSES = {
    1: "as AI proposed",
    2: "added by reader",
    3: "removed by reader",
    4: "relabelled by reader",
}
PROV_COLORS: dict[int, tuple[int, int, int]] = {
    1: (70, 130, 255),  # AI: blue
    2: (40, 220, 60),  # added: green
    3: (255, 40, 40),  # removed: red
    4: (255, 200, 0),  # relabelled: amber
}


def provenance_display_codes(prov: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Display codes (:data:`PROV_CLASSES`) of one plane from ``Provenance`` codes and the edited
    labels: labelled as the AI proposed → 1, added → 2, removed → 3, relabelled → 4, else 0."""
    return np.where(prov > 0, prov + np.uint8(1), (current != 0).astype(np.uint8)).astype(np.uint8)


@dataclass(eq=False)
class ProvenanceLayer(Layer):
    """Provenance of the reader's edits, per pixel of the shown plane."""

    name: str
    seg: EditableSegmentation
    opacity: float = 0.55
    visible: bool = True
    outline: bool = False
    show_ai: bool = True  # False: only what the reader changed
    _palette: np.ndarray | None = field(default=None, repr=False)

    def palette(self) -> np.ndarray:
        if self._palette is None:
            vis = [c for c in PROV_COLORS if self.show_ai or c != 1]
            self._palette = pack_palette(PROV_COLORS, visible=vis)
        return self._palette

    def invalidate(self) -> None:
        self._palette = None

    def plane(self, axis: int, index: int) -> LabelPlane | None:
        if not self.visible:
            return None
        index = int(np.clip(index, 0, self.seg.shape[axis] - 1))
        with self.seg.lock:
            codes = provenance_display_codes(
                self.seg.provenance_plane(axis, index), cut(self.seg.current, axis, index)
            )
        return LabelPlane(codes, self.palette(), self.opacity, self.outline)


def edit_layer(seg: EditableSegmentation, template: LabelLayer | None = None) -> LabelLayer:
    """The label layer showing ``seg.current`` (display settings copied from ``template``)."""
    layer = LabelLayer(EDIT_LAYER, seg.current, {})
    sync_edit_layer(layer, seg, template)
    return layer


def sync_edit_layer(
    layer: LabelLayer, seg: EditableSegmentation, template: LabelLayer | None = None
) -> None:
    """Bring colours / names from the label table, and opacity / outline / hidden labels from the
    segmentation result's layer (so the segmentation dock's overlay controls keep working)."""
    layer.labels = seg.current
    layer.colors = {v: info.color for v, info in seg.labels.items()}
    layer.names = {v: info.name for v, info in seg.labels.items()}
    if template is not None:
        layer.opacity, layer.outline = template.opacity, template.outline
        layer.hidden = {v for v in template.hidden if v in layer.colors}
        for v, c in template.colors.items():  # a colour changed in the segmentation dock
            if v in layer.colors and seg.labels[v].source == "ai":
                layer.colors[v] = tuple(int(x) for x in c)
    layer.invalidate()
