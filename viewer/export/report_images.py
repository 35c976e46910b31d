"""Key images for the PDF report: choose the slices a reader wants to see and render them.

No Qt. :func:`auto_key_images` picks the axial slice with the largest lung area, a coronal
reformat through the lungs, and each lesion's measurement slice (largest first) with its
longest-diameter caliper, and renders them with :func:`viewer.export.png.compose_key_image`
(lung window for CT, label colours with outlines). Nothing identifying is drawn on the images.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from viewer.export.png import LUNG_WINDOW, Caliper, compose_key_image
from viewer.volume import Volume

__all__ = ["KeyImage", "LabelStyle", "DEFAULT_COLORS", "auto_key_images", "label_styles", "display_window",
           "render_heatmap_view"]

log = logging.getLogger(__name__)

DEFAULT_COLORS = [(230, 96, 60), (60, 140, 230), (250, 220, 40), (80, 200, 120), (200, 90, 220), (240, 150, 40)]
_LESION_WORDS = ("lesion", "nodule", "mass", "tumor", "tumour", "metasta", "neoplasm")


@dataclass
class KeyImage:
    """A rendered key image (RGB uint8 [y, x, 3]) with its caption and optional notes/parameters."""

    title: str
    rgb: np.ndarray
    note: str = ""
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LabelStyle:
    value: int
    name: str
    color: tuple[int, int, int]

    @property
    def is_lesion(self) -> bool:
        return any(w in self.name.lower() for w in _LESION_WORDS)

    @property
    def is_lung(self) -> bool:
        return "lung" in self.name.lower() and not self.is_lesion


def label_styles(labels_info: Mapping[int, Any] | None, present: Sequence[int] = ()) -> dict[int, LabelStyle]:
    """Normalise ``{value: {"name", "color"} | SegmentInfo | name}`` to :class:`LabelStyle` per value."""
    out: dict[int, LabelStyle] = {}
    for i, (value, info) in enumerate(sorted((labels_info or {}).items(), key=lambda kv: int(kv[0]))):
        v = int(value)
        if v == 0:
            continue
        if isinstance(info, str):
            name, color = info, None
        elif isinstance(info, Mapping):
            name, color = str(info.get("name", f"label {v}")), info.get("color")
        else:
            name, color = str(getattr(info, "name", f"label {v}")), getattr(info, "color", None)
        color = tuple(int(c) for c in color[:3]) if color is not None else DEFAULT_COLORS[i % len(DEFAULT_COLORS)]
        out[v] = LabelStyle(v, name, color)  # type: ignore[arg-type]
    for v in present:
        if int(v) and int(v) not in out:
            out[int(v)] = LabelStyle(int(v), f"label {int(v)}", DEFAULT_COLORS[int(v) % len(DEFAULT_COLORS)])
    return out


def display_window(volume: Volume) -> tuple[float, float]:
    """Lung window for CT; otherwise the 1st–99th percentile of a subsample."""
    if volume.meta.modality.upper() == "CT" or volume.meta.units == "HU" and volume.voxels.min() < -500:
        return LUNG_WINDOW
    sample = volume.voxels[:: max(1, volume.shape[0] // 16), ::4, ::4]
    lo, hi = np.percentile(sample, [1, 99]) if sample.size else (0.0, 1.0)
    return float((lo + hi) / 2), float(max(hi - lo, 1.0))


def _plane(volume: Volume, z: int) -> np.ndarray:
    return volume.voxels[z]


def _axial(volume: Volume, labels: np.ndarray, z: int, styles: dict[int, LabelStyle], window: tuple[float, float],
           min_size: int, calipers: Sequence[Caliper] = (), heatmap: np.ndarray | None = None) -> np.ndarray:
    return compose_key_image(
        _plane(volume, z), window=window, labels=labels[z], colors={v: s.color for v, s in styles.items()},
        alpha=0.3, heatmap=heatmap, calipers=calipers, pixel_spacing=volume.spacing[1:], min_size=min_size,
        invert=volume.meta.invert)


def _crop_box(volume: Volume, cy: float, cx: float, fov_mm: float) -> tuple[int, int, int, int]:
    """Pixel box ``(y0, y1, x0, x1)`` of a ``fov_mm`` square centred on ``(cy, cx)``, inside the slice."""
    ny, nx = volume.shape[1:]
    sy, sx = volume.spacing[1:]
    hy, hx = min(ny, max(8, int(round(fov_mm / sy)))) / 2, min(nx, max(8, int(round(fov_mm / sx)))) / 2
    y0 = int(np.clip(round(cy - hy), 0, max(0, ny - 2 * hy)))
    x0 = int(np.clip(round(cx - hx), 0, max(0, nx - 2 * hx)))
    return y0, min(ny, y0 + int(2 * hy)), x0, min(nx, x0 + int(2 * hx))


def _position(volume: Volume, z: int) -> str:
    try:
        return f"{volume.slice_position(z):.1f} mm"
    except (ValueError, np.linalg.LinAlgError):  # pragma: no cover - degenerate direction
        return "?"


def auto_key_images(volume: Volume, labels: np.ndarray, *, labels_info: Mapping[int, Any] | None = None,
                    stats: Mapping[str, Any] | None = None, max_lesions: int = 6, min_lesion_mm: float = 3.0,
                    coronal: bool = True,
                    window: tuple[float, float] | None = None, min_size: int = 384) -> list[KeyImage]:
    """Key images for a label map on ``volume``.

    Parameters
    ----------
    volume : the series (voxels [z, y, x], HU for CT).
    labels : uint8 [z, y, x] label map on the same grid.
    labels_info : value → name/colour (see :func:`label_styles`).
    stats : :func:`viewer.segstats.segment_statistics` output; its lesion components give the
        lesion slices and calipers (largest ``max_lesions`` first, only those with a longest axial
        diameter of at least ``min_lesion_mm``, or the largest one when none is that big).
    coronal : add a coronal reformat through the centre of the lungs.
    window : display window (centre, width); default :func:`display_window`.
    min_size : short side of each rendered image in pixels (upscaled if smaller).

    Returns
    -------
    list of KeyImage (empty when the volume is RGB or the label map is empty and small).
    """
    if volume.is_rgb:
        return []
    labels = np.asarray(labels)
    nz = volume.shape[0]
    present = [int(v) for v in np.flatnonzero(np.bincount(labels[:: max(1, nz // 64)].ravel(), minlength=256))]
    styles = label_styles(labels_info, present=[v for v in present if v])
    window = window or display_window(volume)
    out: list[KeyImage] = []
    lung = [v for v, s in styles.items() if s.is_lung] or [v for v, s in styles.items() if not s.is_lesion]
    lut = np.zeros(256, bool)
    lut[lung] = True
    area = lut[labels].sum(axis=(1, 2)) if lung else np.zeros(nz, int)
    if area.max(initial=0) > 0:
        z = int(np.argmax(area))
        sy, sx = volume.spacing[1:]
        names = ", ".join(styles[v].name for v in lung)
        out.append(KeyImage(
            f"Axial slice {z + 1}/{nz} ({_position(volume, z)}): largest lung area",
            _axial(volume, labels, z, styles, window, min_size),
            note=f"{names}: {area[z] * sy * sx / 100.0:.1f} cm2 on this slice"))
        if coronal and nz >= 8:
            y = int(np.argmax(lut[labels].sum(axis=(0, 2))))
            plane, lab = volume.voxels[:, y, :], labels[:, y, :]
            if volume.direction[2, 2] > 0:  # higher z is superior: put it at the top
                plane, lab = plane[::-1], lab[::-1]
            out.append(KeyImage(
                f"Coronal reformat, row {y + 1}/{volume.shape[1]}",
                compose_key_image(plane, window=window, labels=lab, colors={v: s.color for v, s in styles.items()},
                                  alpha=0.3, pixel_spacing=(volume.spacing[0], volume.spacing[2]),
                                  min_size=min_size, invert=volume.meta.invert),
                note="superior at the top" if abs(volume.direction[2, 2]) > 0.5 else ""))
    comps: list[tuple[str, dict[str, Any]]] = []
    for value, entry in (stats or {}).get("lesions", {}).items():
        name = str(entry.get("name", styles.get(int(value), LabelStyle(0, "lesion", (255, 0, 0))).name))
        comps += [(name, c) for c in entry.get("components", [])]
    comps.sort(key=lambda nc: -float(nc[1].get("volume_ml", 0.0)))
    shown = [nc for nc in comps if float(nc[1].get("longest_axial_diameter_mm") or 0.0) >= min_lesion_mm]
    shown = (shown or comps[:1])[:max_lesions]
    for name, c in shown:
        z = int(c.get("slice_index", c.get("centroid_slice", 0)))
        if not 0 <= z < nz:
            continue
        ends = [tuple(float(v) for v in e) for e in (c.get("diameter_endpoints_yx") or [])]
        d = c.get("longest_axial_diameter_mm")
        fov = max(60.0, 3.0 * float(d or 0.0))
        if len(ends) == 2:
            cy, cx = (ends[0][0] + ends[1][0]) / 2, (ends[0][1] + ends[1][1]) / 2
        else:
            cy, cx = (float(v) for v in (c.get("centroid_zyx") or [0, volume.shape[1] / 2, volume.shape[2] / 2])[1:])
        y0, y1, x0, x1 = _crop_box(volume, cy, cx, fov)
        cal = [Caliper((ends[0][0] - y0, ends[0][1] - x0), (ends[1][0] - y0, ends[1][1] - x0),
                       f"{d:.1f} mm" if d is not None else "", (255, 255, 255))] if len(ends) == 2 else []
        rgb = compose_key_image(
            volume.voxels[z, y0:y1, x0:x1], window=window, labels=labels[z, y0:y1, x0:x1],
            colors={v: s.color for v, s in styles.items()}, alpha=0.3, calipers=cal,
            pixel_spacing=volume.spacing[1:], min_size=min_size, invert=volume.meta.invert)
        out.append(KeyImage(
            f"{name} {c.get('id', '')}: axial slice {z + 1}/{nz} ({_position(volume, z)})".replace("  ", " "),
            rgb,
            note=(f"longest axial diameter {d:.1f} mm, volume {float(c.get('volume_ml', 0)):.2f} mL; "
                  f"zoomed, {fov:.0f} mm field" if d is not None else f"zoomed, {fov:.0f} mm field")))
    if len(comps) > len(shown):
        log.info("key images for %d of %d lesion components", len(shown), len(comps))
    return out


def render_heatmap_view(volume: Volume, labels: np.ndarray | None, view: Mapping[str, Any], *,
                        labels_info: Mapping[int, Any] | None = None, min_size: int = 384) -> KeyImage:
    """A Grad-CAM (or other heatmap) key image from ``view``.

    ``view`` holds ``"slice"`` (z index), ``"heatmap"`` float [y, x] in [0, 1] on the slice grid
    (or a ready ``"image"`` RGB uint8), and any parameters to print (method, target, layer, ...).
    """
    params = {k: v for k, v in view.items() if k not in ("heatmap", "image", "slice")}
    z = int(view.get("slice", 0))
    if "image" in view and view["image"] is not None:
        rgb = np.asarray(view["image"], np.uint8)
    else:
        styles = label_styles(labels_info)
        rgb = compose_key_image(
            volume.voxels[z], window=display_window(volume), labels=None if labels is None else labels[z],
            colors={v: s.color for v, s in styles.items()}, alpha=0.0, heatmap=np.asarray(view["heatmap"]),
            pixel_spacing=volume.spacing[1:], min_size=min_size, invert=volume.meta.invert)
    title = str(view.get("title") or f"{params.get('method', 'Heatmap')}: axial slice {z + 1}/{volume.shape[0]}")
    return KeyImage(title, rgb, params=params)
