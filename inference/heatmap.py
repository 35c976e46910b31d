"""Colouring [0, 1] heatmaps (Grad-CAM), explicit RGB output. numpy + OpenCV; no torch, no Qt.

``cv2.applyColorMap`` returns **BGR**; every function here converts, so callers always get RGB.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["COLORMAPS", "colormap_lut", "colorize_heatmap", "overlay_heatmap"]

COLORMAPS: dict[str, int] = {
    "jet": cv2.COLORMAP_JET,
    "turbo": cv2.COLORMAP_TURBO,
    "inferno": cv2.COLORMAP_INFERNO,
    "viridis": cv2.COLORMAP_VIRIDIS,
    "hot": cv2.COLORMAP_HOT,
    "magma": cv2.COLORMAP_MAGMA,
}


def colormap_lut(name: str = "jet") -> np.ndarray:
    """The colour map as an RGB lookup table ``uint8 [256, 3]`` (index = heat × 255)."""
    try:
        code = COLORMAPS[name]
    except KeyError:
        raise ValueError(f"unknown colour map {name!r}; known: {', '.join(COLORMAPS)}") from None
    ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
    return cv2.cvtColor(cv2.applyColorMap(ramp, code), cv2.COLOR_BGR2RGB).reshape(256, 3)


def _heat_u8(heat: np.ndarray) -> np.ndarray:
    h = np.asarray(heat, dtype=np.float32)
    if h.ndim != 2:
        raise ValueError(f"heatmap must be [y, x], got shape {h.shape}")
    return np.rint(np.clip(np.nan_to_num(h), 0.0, 1.0) * 255.0).astype(np.uint8)


def colorize_heatmap(heat: np.ndarray, colormap: str = "jet") -> np.ndarray:
    """``[y, x]`` float heatmap in [0, 1] → RGB ``uint8 [y, x, 3]`` (values outside are clipped)."""
    return np.take(colormap_lut(colormap), _heat_u8(heat), axis=0)


def overlay_heatmap(
    image: np.ndarray,
    heat: np.ndarray,
    *,
    alpha: float = 0.4,
    colormap: str = "jet",
    min_heat: float = 0.0,
) -> np.ndarray:
    """Blend a coloured heatmap over a grey ``uint8 [y, x]`` or RGB ``uint8 [y, x, 3]`` image.

    ``alpha`` is the heatmap opacity in [0, 1]; pixels with ``heat < min_heat`` are left unpainted.
    Returns RGB ``uint8 [y, x, 3]``.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim not in (2, 3):
        raise ValueError(f"image must be uint8 [y, x] or [y, x, 3], got {img.dtype} {img.shape}")
    rgb = (
        cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_GRAY2RGB) if img.ndim == 2 else img.copy()
    )
    if rgb.shape[:2] != np.shape(heat):
        raise ValueError(f"heatmap shape {np.shape(heat)} != image shape {rgb.shape[:2]}")
    col = colorize_heatmap(heat, colormap)
    blended = cv2.addWeighted(col, float(alpha), rgb, 1.0 - float(alpha), 0.0)
    if min_heat > 0:
        cv2.copyTo(blended, (np.asarray(heat) >= min_heat).astype(np.uint8), rgb)
        return rgb
    return blended
