"""Turning voxel values into screen pixels: window/level, presets, overlay compositing. No Qt.

Everything here works on one 2-D plane and is vectorised (numpy + cv2), so a 512x512 frame with
windowing and a few overlays costs about a millisecond (see ``bench/bench_draw.py``).

Layouts: planes are ``[rows, cols]``; colour images are ``[rows, cols, 3]`` uint8 in **RGB** order
(never BGR); label maps are uint8 (or any unsigned int < 256) ``[rows, cols]``; heatmaps are float
``[rows, cols]`` in ``[0, 1]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from viewer.volume import Volume, WindowPreset

__all__ = [
    "CT_PRESETS",
    "HeatmapPlane",
    "LabelPlane",
    "RGBAPlane",
    "auto_window",
    "colormap",
    "composite",
    "default_window",
    "gray_to_rgb",
    "pack_palette",
    "presets_for",
    "window_to_uint8",
]


class _LazyCv2:
    """``cv2`` imported on first use (~0.2 s), so the window can appear before it is needed."""

    def __getattr__(self, name: str):
        import cv2 as _cv2

        globals()["cv2"] = _cv2
        return getattr(_cv2, name)


cv2 = _LazyCv2()

#: CT window presets (centre, width) in HU, as commonly used in radiology.
CT_PRESETS: tuple[WindowPreset, ...] = (
    WindowPreset("Lung", -600.0, 1500.0),
    WindowPreset("Mediastinum", 40.0, 400.0),
    WindowPreset("Bone", 400.0, 1800.0),
    WindowPreset("Brain", 40.0, 80.0),
    WindowPreset("Abdomen", 50.0, 350.0),
    WindowPreset("Liver", 60.0, 160.0),
)


# --------------------------------------------------------------------------- windowing
def window_to_uint8(
    plane: np.ndarray,
    center: float,
    width: float,
    *,
    invert: bool = False,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Map values to 0..255 with a linear window (DICOM PS3.3 C.11.2.1.2, "LINEAR" simplified).

    Parameters
    ----------
    plane : ndarray [rows, cols], int16 / uint16 / float32 (HU for CT)
    center, width : float
        Window centre and width in the plane's units; values ``<= center - width/2`` become 0
        (black), values ``>= center + width/2`` become 255.
    invert : bool
        MONOCHROME1: low values bright.

    Returns
    -------
    ndarray [rows, cols] uint8
    """
    width = max(float(width), 1e-3)
    lo = float(center) - width / 2.0
    hi = lo + width
    if np.issubdtype(plane.dtype, np.integer):
        info = np.iinfo(plane.dtype)
        lo_i = int(np.clip(np.floor(lo), info.min, info.max))
        hi_i = int(np.clip(np.ceil(hi), info.min, info.max))
        clipped = np.clip(plane, plane.dtype.type(lo_i), plane.dtype.type(hi_i))
    else:
        clipped = np.clip(plane, np.float32(lo), np.float32(hi)).astype(np.float32, copy=False)
    # convertScaleAbs takes |x|: clipping first keeps x*alpha + beta >= 0, so abs is harmless.
    alpha = 255.0 / width
    res = cv2.convertScaleAbs(clipped, alpha=alpha, beta=-lo * alpha)
    if invert:
        cv2.bitwise_not(res, res)
    if out is not None:
        out[...] = res
        return out
    return res


def auto_window(
    voxels: np.ndarray, *, low_pct: float = 1.0, high_pct: float = 99.0
) -> tuple[float, float]:
    """(centre, width) from percentiles of a subsample (MR and other non-HU images)."""
    a = np.asarray(voxels)
    step = max(1, a.size // 200_000)
    sample = a.reshape(-1)[::step]
    if sample.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(sample.astype(np.float32), [low_pct, high_pct])
    if hi <= lo:
        hi = lo + 1.0
    return float((lo + hi) / 2.0), float(hi - lo)


def presets_for(volume: Volume) -> list[WindowPreset]:
    """Header windows first, then the CT presets (CT only)."""
    out = list(volume.meta.window_presets)
    if volume.meta.modality.upper() == "CT" or volume.meta.units == "HU":
        out.extend(CT_PRESETS)
    return out


def default_window(volume: Volume) -> tuple[float, float]:
    """The first header window, else a soft-tissue window for CT, else an auto window."""
    if volume.meta.window_presets:
        p = volume.meta.window_presets[0]
        return p.center, p.width
    if volume.meta.modality.upper() == "CT":
        return 40.0, 400.0
    return auto_window(volume.voxels)


# --------------------------------------------------------------------------- palettes
def pack_palette(
    colors: Mapping[int, Sequence[int]], *, visible: Iterable[int] | None = None
) -> np.ndarray:
    """A 256-entry uint32 palette ``r | g<<8 | b<<16 | a<<24`` (RGBA bytes on little-endian).

    Label 0 and labels not in ``visible`` (when given) get alpha 0.
    """
    pal = np.zeros((256, 4), np.uint8)
    vis = None if visible is None else set(int(v) for v in visible)
    for value, rgb in colors.items():
        v = int(value)
        if v <= 0 or v > 255 or (vis is not None and v not in vis):
            continue
        pal[v, :3] = np.asarray(rgb[:3], np.uint8)
        pal[v, 3] = 255
    return pal.reshape(-1).view("<u4").copy()


def colormap(name: str = "jet") -> np.ndarray:
    """A 256-entry packed RGBA palette (see :func:`pack_palette`) for heatmaps, explicit RGB.

    ``"jet"``: blue → cyan → yellow → red; ``"hot"``: black → red → yellow → white;
    ``"gray"``.
    """
    t = np.linspace(0.0, 1.0, 256)
    if name == "jet":
        r = np.clip(1.5 - np.abs(4 * t - 3), 0, 1)
        g = np.clip(1.5 - np.abs(4 * t - 2), 0, 1)
        b = np.clip(1.5 - np.abs(4 * t - 1), 0, 1)
    elif name == "hot":
        r = np.clip(3 * t, 0, 1)
        g = np.clip(3 * t - 1, 0, 1)
        b = np.clip(3 * t - 2, 0, 1)
    elif name == "gray":
        r = g = b = t
    else:
        raise ValueError(f"unknown colormap {name!r}; use 'jet', 'hot' or 'gray'")
    rgba = np.stack([r, g, b, np.ones_like(t)], axis=1)
    return (rgba * 255 + 0.5).astype(np.uint8).reshape(-1).view("<u4").copy()


def _unpack(packed_img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint32 [h, w] packed RGBA → (rgb uint8 [h, w, 3], alpha uint8 [h, w])."""
    rgba = packed_img.view(np.uint8).reshape(*packed_img.shape, 4)
    rgb = cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB)
    alpha = cv2.extractChannel(rgba, 3)
    return rgb, alpha


# --------------------------------------------------------------------------- overlay planes
@dataclass
class LabelPlane:
    """One plane of a label map with its packed palette (see :func:`pack_palette`)."""

    labels: np.ndarray  # [rows, cols] uint8
    palette: np.ndarray  # uint32 [256]
    opacity: float = 0.4
    outline: bool = False


@dataclass
class HeatmapPlane:
    """A float heatmap in [0, 1]; values below ``threshold`` are not drawn."""

    heat: np.ndarray  # [rows, cols] float
    palette: np.ndarray  # uint32 [256] from colormap()
    opacity: float = 0.5
    threshold: float = 0.0


@dataclass
class RGBAPlane:
    """An RGBA image (uint8 [rows, cols, 4], RGB order, straight alpha) scaled by ``opacity``."""

    rgba: np.ndarray
    opacity: float = 1.0


def gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    """uint8 [h, w] → uint8 [h, w, 3]."""
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)


def _blend_masked(base: np.ndarray, color: np.ndarray, mask: np.ndarray, opacity: float) -> None:
    """``base[mask] = (1 - opacity) * base + opacity * color`` in place, with cv2."""
    opacity = float(np.clip(opacity, 0.0, 1.0))
    if opacity >= 0.999:
        blended = color
    else:
        blended = cv2.addWeighted(base, 1.0 - opacity, color, opacity, 0.0)
    cv2.copyTo(blended, mask, base)


def _outline(labels: np.ndarray) -> np.ndarray:
    """Labels kept only on their boundaries (1-pixel ring), else 0."""
    k = np.ones((3, 3), np.uint8)
    dil = cv2.dilate(labels, k)
    ero = cv2.erode(labels, k)
    edge = (dil != ero) | (ero != labels)
    inside = labels.copy()
    inside[~edge] = 0
    return inside


def composite(
    gray: np.ndarray, planes: Sequence[LabelPlane | HeatmapPlane | RGBAPlane]
) -> np.ndarray:
    """Draw overlay planes, in order, over a windowed uint8 image.

    Parameters
    ----------
    gray : ndarray [rows, cols] uint8 (from :func:`window_to_uint8`) or [rows, cols, 3] RGB
    planes : overlays of the same [rows, cols]

    Returns
    -------
    ndarray [rows, cols, 3] uint8, RGB. ``gray`` is not modified.
    """
    base = gray_to_rgb(gray) if gray.ndim == 2 else gray.copy()
    for p in planes:
        if isinstance(p, LabelPlane):
            lab = p.labels if p.labels.dtype == np.uint8 else p.labels.astype(np.uint8)
            if p.outline:
                lab = _outline(lab)
            color, alpha = _unpack(np.take(p.palette, lab))
            _blend_masked(base, color, alpha, 1.0 if p.outline else p.opacity)
        elif isinstance(p, HeatmapPlane):
            h8 = cv2.convertScaleAbs(
                np.clip(p.heat, 0.0, 1.0).astype(np.float32, copy=False), alpha=255.0
            )
            color, _ = _unpack(np.take(p.palette, h8))
            thr = int(np.clip(round(p.threshold * 255), 0, 255))
            mask = (h8 > thr).astype(np.uint8) if thr > 0 else (h8 > 0).astype(np.uint8)
            _blend_masked(base, color, mask, p.opacity)
        elif isinstance(p, RGBAPlane):
            rgb = cv2.cvtColor(np.ascontiguousarray(p.rgba), cv2.COLOR_RGBA2RGB)
            w = cv2.extractChannel(np.ascontiguousarray(p.rgba), 3).astype(np.float32)
            w *= np.float32(np.clip(p.opacity, 0.0, 1.0) / 255.0)
            base = cv2.blendLinear(rgb, base, w, np.float32(1.0) - w)
        else:  # pragma: no cover - programming error
            raise TypeError(f"unknown overlay plane {type(p).__name__}")
    return base
