"""A small observable view state shared by the viewer's widgets. No Qt.

Widgets receive a :class:`ViewState` and subscribe to named events; they never talk to each other
directly (napari's model/view split). Events (the callback receives keyword arguments):

``volume``        a new volume (or None) became current
``cursor``        the crosshair point ``(z, y, x)`` changed (this is the slice index of every view)
``window``        window centre/width changed
``view``          zoom / pan of a view changed (``axis=...``)
``layers``        an overlay layer was added, removed or changed (``name=...``)
``tool``          the active mouse tool changed
``identity``      the hide-patient-identity flag changed
``layout``        1x1 / 2x2 layout or the active view changed
``measurements``  a measurement was added or removed

Overlay layers are generic and named: a :class:`LabelLayer` (label map + palette), a
:class:`HeatmapLayer` (float [0, 1] + colormap) or an :class:`ImageLayer` (RGBA). Each knows how to
cut itself along the three view axes (0 = axial [y, x], 1 = coronal [z, x], 2 = sagittal [z, y]).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from viewer.display import (
    HeatmapPlane,
    LabelPlane,
    RGBAPlane,
    colormap,
    default_window,
    pack_palette,
)
from viewer.volume import Volume

__all__ = [
    "AXES",
    "EDIT_TOOLS",
    "HeatmapLayer",
    "ImageLayer",
    "LabelLayer",
    "Layer",
    "Measurement",
    "ViewState",
    "cut",
]

log = logging.getLogger(__name__)

#: view axis → name
AXES = ("axial", "coronal", "sagittal")
#: mouse tools handled by edit panels through ``ViewState.tool_handlers`` (viewer/qt/edit_tools.py)
EDIT_TOOLS = ("brush", "eraser", "fill")
TOOLS = ("navigate", "window", "pan", "zoom", "ruler", "rect", "ellipse", *EDIT_TOOLS)


def cut(array: np.ndarray, axis: int, index: int) -> np.ndarray:
    """The plane at ``index`` along array ``axis`` (= the view axis for ``[z, y, x, ...]``)."""
    index = int(np.clip(index, 0, array.shape[axis] - 1))
    return np.take(array, index, axis=axis) if axis > 2 else array[(slice(None),) * axis + (index,)]


class Layer:
    """Base of overlay layers. Subclasses implement :meth:`plane`."""

    name: str
    visible: bool
    opacity: float

    def plane(self, axis: int, index: int) -> LabelPlane | HeatmapPlane | RGBAPlane | None:
        raise NotImplementedError


@dataclass(eq=False)
class LabelLayer(Layer):
    """A label map on the volume grid: uint8 ``[z, y, x]``, colours RGB per label value.

    ``hidden`` holds label values not drawn. ``outline`` draws only boundaries.
    """

    name: str
    labels: np.ndarray
    colors: dict[int, tuple[int, int, int]]
    names: dict[int, str] = field(default_factory=dict)
    opacity: float = 0.4
    visible: bool = True
    outline: bool = False
    hidden: set[int] = field(default_factory=set)
    probabilities: np.ndarray | None = None  # uint8 [K, z, y, x] (p * 255), for re-thresholding
    threshold: float | None = None  # None: show ``labels``; else re-threshold ``probabilities``
    _palette: np.ndarray | None = field(default=None, repr=False)

    def palette(self) -> np.ndarray:
        if self._palette is None:
            vis = [v for v in self.colors if v not in self.hidden]
            self._palette = pack_palette(self.colors, visible=vis)
        return self._palette

    def invalidate(self) -> None:
        """Call after changing ``colors`` / ``hidden`` / ``labels`` in place."""
        self._palette = None

    def plane(self, axis: int, index: int) -> LabelPlane | None:
        if not self.visible:
            return None
        return LabelPlane(self.label_plane(axis, index), self.palette(), self.opacity, self.outline)

    def label_plane(self, axis: int, index: int) -> np.ndarray:
        """The label plane shown: ``labels`` cut, or the probabilities re-thresholded on the fly
        (one plane costs ~1-2 ms at 512², so moving the threshold slider is instant)."""
        if self.threshold is None or self.probabilities is None:
            return cut(self.labels, axis, index)
        from inference.pipeline import threshold_labels

        probs = cut(self.probabilities, axis + 1, index)  # [K, rows, cols]
        return threshold_labels(probs, self.threshold)

    def current_labels(self) -> np.ndarray:
        """The whole label map as shown (re-thresholded when a threshold is set)."""
        if self.threshold is None or self.probabilities is None:
            return self.labels
        from inference.pipeline import threshold_labels

        return threshold_labels(self.probabilities, self.threshold)


@dataclass(eq=False)
class HeatmapLayer(Layer):
    """A float heatmap in [0, 1], ``[z, y, x]`` (or ``[y, x]`` valid on slice ``z`` only)."""

    name: str
    heat: np.ndarray
    cmap: str = "jet"
    opacity: float = 0.5
    threshold: float = 0.05
    visible: bool = True
    z: int | None = None  # for a single-slice [y, x] heatmap: the axial slice it belongs to

    def plane(self, axis: int, index: int) -> HeatmapPlane | None:
        if not self.visible:
            return None
        if self.heat.ndim == 2:
            if axis != 0 or index != self.z:
                return None
            data = self.heat
        else:
            data = cut(self.heat, axis, index)
        return HeatmapPlane(data, colormap(self.cmap), self.opacity, self.threshold)


@dataclass(eq=False)
class ImageLayer(Layer):
    """An RGBA image ``[z, y, x, 4]`` uint8 (RGB order) on the volume grid."""

    name: str
    rgba: np.ndarray
    opacity: float = 1.0
    visible: bool = True

    def plane(self, axis: int, index: int) -> RGBAPlane | None:
        if not self.visible:
            return None
        return RGBAPlane(cut(self.rgba, axis, index), self.opacity)


@dataclass
class Measurement:
    """A measurement on one plane: points are (row, col) in that plane's pixel coordinates."""

    kind: str  # "ruler" | "rect" | "ellipse"
    axis: int
    index: int
    points: list[tuple[float, float]]
    result: dict[str, float] = field(default_factory=dict)
    id: int = 0


class ViewState:
    """Observable state of the viewer (see the module docstring for the events)."""

    def __init__(self) -> None:
        self._subs: dict[str, list[Callable[..., Any]]] = {}
        self.volume: Volume | None = None
        self.series_key: str = ""
        self.cursor: tuple[int, int, int] = (0, 0, 0)
        self.window: tuple[float, float] = (40.0, 400.0)
        self.zoom: list[float] = [1.0, 1.0, 1.0]  # relative to "fit"
        self.pan: list[tuple[float, float]] = [(0.0, 0.0)] * 3  # screen px
        self.layers: dict[str, Layer] = {}
        self.tool: str = "navigate"
        #: tool name → handler (press/move/release/paint_cursor) that the slice views forward to
        self.tool_handlers: dict[str, Any] = {}
        self.hide_identity: bool = False
        self.overlays_hidden: bool = False  # one key hides every overlay layer at once
        self.layout: str = "1x1"
        self.active_axis: int = 0
        self.measurements: list[Measurement] = []
        self._next_id = 1

    # ------------------------------------------------------------------ events
    def subscribe(self, event: str, callback: Callable[..., Any]) -> None:
        self._subs.setdefault(event, []).append(callback)

    def unsubscribe(self, event: str, callback: Callable[..., Any]) -> None:
        cbs = self._subs.get(event, [])
        if callback in cbs:
            cbs.remove(callback)

    def emit(self, event: str, **kwargs: Any) -> None:
        """Call every subscriber of ``event``. A failing subscriber does not stop the others;
        the first exception is re-raised once all have run (so the error presenter sees it)."""
        first: BaseException | None = None
        for cb in list(self._subs.get(event, [])):
            try:
                cb(**kwargs)
            except Exception as exc:  # noqa: BLE001 - re-raised below
                log.debug("subscriber of %r failed: %s", event, type(exc).__name__)
                first = first or exc
        if first is not None:
            raise first

    # ------------------------------------------------------------------ volume
    def set_volume(self, volume: Volume | None, key: str = "") -> None:
        """Make ``volume`` current: cursor to its centre, its default window, no layers."""
        self.volume = volume
        self.series_key = key
        self.layers = {}
        self.measurements = []
        self.zoom = [1.0, 1.0, 1.0]
        self.pan = [(0.0, 0.0)] * 3
        if volume is not None:
            nz, ny, nx = volume.shape
            self.cursor = (nz // 2, ny // 2, nx // 2)
            self.window = default_window(volume)
        self.emit("volume", volume=volume)
        self.emit("window", window=self.window)
        self.emit("cursor", cursor=self.cursor)

    def shape(self) -> tuple[int, int, int]:
        return (1, 1, 1) if self.volume is None else self.volume.shape

    # ------------------------------------------------------------------ cursor / slices
    def set_cursor(self, z: int, y: int, x: int) -> None:
        nz, ny, nx = self.shape()
        c = (int(np.clip(z, 0, nz - 1)), int(np.clip(y, 0, ny - 1)), int(np.clip(x, 0, nx - 1)))
        if c != self.cursor:
            self.cursor = c
            self.emit("cursor", cursor=c)

    def slice_index(self, axis: int) -> int:
        return self.cursor[axis]

    def slice_count(self, axis: int) -> int:
        return self.shape()[axis]

    def set_slice(self, axis: int, index: int) -> None:
        c = list(self.cursor)
        c[axis] = index
        self.set_cursor(*c)

    def step_slice(self, axis: int, delta: int) -> None:
        self.set_slice(axis, self.cursor[axis] + delta)

    # ------------------------------------------------------------------ display
    def set_window(self, center: float, width: float) -> None:
        w = (float(center), max(float(width), 1.0))
        if w != self.window:
            self.window = w
            self.emit("window", window=w)

    def set_zoom(self, axis: int, zoom: float, pan: tuple[float, float] | None = None) -> None:
        self.zoom[axis] = float(np.clip(zoom, 0.05, 64.0))
        if pan is not None:
            self.pan[axis] = (float(pan[0]), float(pan[1]))
        self.emit("view", axis=axis)

    def set_pan(self, axis: int, pan: tuple[float, float]) -> None:
        self.pan[axis] = (float(pan[0]), float(pan[1]))
        self.emit("view", axis=axis)

    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}; one of {TOOLS}")
        self.tool = tool
        self.emit("tool", tool=tool)

    def set_hide_identity(self, hide: bool) -> None:
        self.hide_identity = bool(hide)
        self.emit("identity", hide=self.hide_identity)

    def set_layout(self, layout: str | None = None, active_axis: int | None = None) -> None:
        if layout is not None:
            if layout not in ("1x1", "2x2"):
                raise ValueError(f"layout must be '1x1' or '2x2', got {layout!r}")
            self.layout = layout
        if active_axis is not None:
            self.active_axis = int(active_axis)
        self.emit("layout", layout=self.layout, active_axis=self.active_axis)

    # ------------------------------------------------------------------ layers
    def set_layer(self, layer: Layer) -> None:
        """Add or replace the layer named ``layer.name``."""
        self.layers[layer.name] = layer
        self.emit("layers", name=layer.name)

    def remove_layer(self, name: str) -> None:
        if self.layers.pop(name, None) is not None:
            self.emit("layers", name=name)

    def layer_changed(self, name: str, box: Any = None) -> None:
        """Tell views that a layer's data or settings changed in place.

        ``box``: only voxels in this region changed (an object with ``intersects_plane(axis,
        index)``, e.g. ``viewer.masks_geometry.Box``); views whose plane misses it skip the redraw.
        """
        layer = self.layers.get(name)
        if isinstance(layer, LabelLayer) and box is None:
            layer.invalidate()
        self.emit("layers", name=name, box=box)

    def set_overlays_hidden(self, hidden: bool) -> None:
        """Hide (or show again) all overlay layers without changing their own settings."""
        self.overlays_hidden = bool(hidden)
        self.emit("layers", name="")

    def planes(self, axis: int, index: int) -> list[LabelPlane | HeatmapPlane | RGBAPlane]:
        """The visible overlay planes of every layer at ``index`` along ``axis``, in order."""
        if self.overlays_hidden:
            return []
        out = []
        for layer in self.layers.values():
            try:
                p = layer.plane(axis, index)
            except (IndexError, ValueError):
                log.warning("overlay layer %r does not match the volume grid; skipped", layer.name)
                continue
            if p is not None:
                out.append(p)
        return out

    # ------------------------------------------------------------------ measurements
    def add_measurement(self, m: Measurement) -> Measurement:
        m.id = self._next_id
        self._next_id += 1
        self.measurements.append(m)
        self.emit("measurements")
        return m

    def remove_measurement(self, mid: int) -> None:
        self.measurements = [m for m in self.measurements if m.id != mid]
        self.emit("measurements")

    def measurements_on(self, axis: int, index: int) -> list[Measurement]:
        return [m for m in self.measurements if m.axis == axis and m.index == index]
