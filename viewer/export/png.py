"""Key images: compose a slice with its overlays (pure numpy / cv2) and write it as PNG, atomically.

No Qt. :func:`compose_key_image` renders what a reader sees: the slice in a display window
(lung window by default), each label blended in its colour with an outline, optionally a
Grad-CAM heatmap and caliper lines (lesion diameters, rulers). :func:`write_png` writes any RGB
image at full resolution; nothing but pixels goes into the file (no text chunks), so an
anonymised key image carries no identifiers unless they were drawn into it — and the composer
draws only what the caller passes in ``caption``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from viewer.errors import ExportError
from viewer.export.atomic import write_bytes_atomic

__all__ = ["LUNG_WINDOW", "Caliper", "compose_key_image", "write_png", "encode_png", "window_gray"]

log = logging.getLogger(__name__)

LUNG_WINDOW = (-600.0, 1500.0)  # centre, width (HU)


@dataclass(frozen=True)
class Caliper:
    """A line to draw on a key image: end points ``(row, col)`` in slice pixels, and a label."""

    p0: tuple[float, float]
    p1: tuple[float, float]
    text: str = ""
    color: tuple[int, int, int] = (255, 255, 0)


def window_gray(plane: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """``plane`` [y, x] (HU) → uint8 grey with ``window = (centre, width)``: linear, clipped."""
    c, w = float(window[0]), max(float(window[1]), 1e-6)
    lo = c - w / 2.0
    g = (plane.astype(np.float32) - np.float32(lo)) * np.float32(255.0 / w)
    return np.clip(g, 0, 255).astype(np.uint8)


def _heat_rgb(heat: np.ndarray) -> np.ndarray:
    h8 = (np.clip(np.nan_to_num(heat.astype(np.float32)), 0.0, 1.0) * 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(h8, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)  # explicit RGB order


def compose_key_image(
    plane: np.ndarray,
    *,
    window: tuple[float, float] = LUNG_WINDOW,
    labels: np.ndarray | None = None,
    colors: Mapping[int, Sequence[int]] | None = None,
    alpha: float = 0.35,
    outline: bool = True,
    heatmap: np.ndarray | None = None,
    heatmap_alpha: float = 0.45,
    calipers: Sequence[Caliper] = (),
    pixel_spacing: tuple[float, float] | None = None,
    min_size: int = 0,
    caption: Sequence[str] = (),
    invert: bool = False,
) -> np.ndarray:
    """Render one slice with overlays as RGB uint8 ``[rows, cols, 3]``.

    Parameters
    ----------
    plane : [y, x] values (HU for CT), or an already rendered RGB uint8 [y, x, 3].
    window : (centre, width) in the plane's units; default lung window (-600, 1500) HU.
    labels : uint8 [y, x] label map of the slice (0 = background).
    colors : label value → RGB 0..255; labels without a colour are not drawn.
    alpha : fill opacity of labels (0 = outline only).
    outline : draw each label's contour (1 output pixel wide) at full opacity.
    heatmap : float [y, x] in [0, 1] (e.g. Grad-CAM), drawn with the jet colour map where > 0.05.
    calipers : lines (lesion diameters, rulers) with their text.
    pixel_spacing : (row mm, col mm); when they differ the image is resampled to square pixels.
    min_size : upscale (nearest for labels, linear for the image) so the shorter side is at least this.
    caption : lines of text drawn top-left (the caller decides what; nothing identifying by default).
    invert : MONOCHROME1 display.

    Returns
    -------
    numpy.ndarray
        uint8 [rows', cols', 3] RGB; rows'/cols' equal the input unless resampled.
    """
    plane = np.asarray(plane)
    if plane.ndim == 3 and plane.shape[2] == 3 and plane.dtype == np.uint8:
        rgb = plane.copy()
    elif plane.ndim == 2:
        g = window_gray(plane, window)
        if invert:
            g = 255 - g
        rgb = np.repeat(g[:, :, None], 3, axis=2)
    else:
        raise ValueError(f"plane must be [y, x] values or [y, x, 3] uint8 RGB, got {plane.shape} {plane.dtype}")
    ny, nx = rgb.shape[:2]
    for name, arr in (("labels", labels), ("heatmap", heatmap)):
        if arr is not None and np.asarray(arr).shape[:2] != (ny, nx):
            raise ValueError(f"{name} shape {np.asarray(arr).shape} differs from the plane {(ny, nx)}")
    # output size: square pixels, at least min_size on the short side
    fy = fx = 1.0
    if pixel_spacing is not None and pixel_spacing[0] > 0 and pixel_spacing[1] > 0:
        sy, sx = float(pixel_spacing[0]), float(pixel_spacing[1])
        fy, fx = (sy / sx, 1.0) if sy > sx else (1.0, sx / sy)
    if min_size and min(ny * fy, nx * fx) < min_size:
        k = min_size / min(ny * fy, nx * fx)
        fy, fx = fy * k, fx * k
    out_size = (max(1, int(round(nx * fx))), max(1, int(round(ny * fy))))  # cv2: (width, height)
    if out_size != (nx, ny):
        rgb = cv2.resize(rgb, out_size, interpolation=cv2.INTER_LINEAR)
        if labels is not None:
            labels = cv2.resize(np.ascontiguousarray(labels, np.uint8), out_size, interpolation=cv2.INTER_NEAREST)
        if heatmap is not None:
            heatmap = cv2.resize(np.asarray(heatmap, np.float32), out_size, interpolation=cv2.INTER_LINEAR)
    img = rgb.astype(np.float32)
    if heatmap is not None:
        hm = np.asarray(heatmap, np.float32)
        a = (np.clip(hm, 0, 1) * heatmap_alpha * (hm > 0.05))[:, :, None]
        img = img * (1 - a) + _heat_rgb(hm).astype(np.float32) * a
    if labels is not None and colors:
        lab = np.asarray(labels)
        for value, color in colors.items():
            mask = lab == int(value)
            if not mask.any():
                continue
            col = np.asarray(color[:3], np.float32)
            if alpha > 0:
                img[mask] = img[mask] * (1 - alpha) + col * alpha
    out = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    if labels is not None and colors and outline:
        lab = np.asarray(labels)
        for value, color in colors.items():
            mask = (lab == int(value)).astype(np.uint8)
            if mask.any():
                contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
                cv2.drawContours(out, contours, -1, tuple(int(c) for c in color[:3]), 1, lineType=cv2.LINE_8)
    scale = np.array([fy, fx])
    thick = max(1, int(round(min(out.shape[:2]) / 400)))
    font = max(0.4, min(out.shape[:2]) / 700)
    for cal in calipers:
        a = (np.asarray(cal.p0, float) + 0.5) * scale - 0.5
        b = (np.asarray(cal.p1, float) + 0.5) * scale - 0.5
        pa, pb = (int(round(a[1])), int(round(a[0]))), (int(round(b[1])), int(round(b[0])))
        color = tuple(int(c) for c in cal.color)
        cv2.line(out, pa, pb, color, thick, cv2.LINE_AA)
        for p in (pa, pb):
            cv2.circle(out, p, thick + 1, color, -1, cv2.LINE_AA)
        if cal.text:
            org = (max(pa[0], pb[0]) + 4, max(12, min(pa[1], pb[1]) - 4))
            _text(out, cal.text, org, font, color)
    for i, line in enumerate(caption):
        _text(out, line, (6, int(16 * font / 0.45) * (i + 1)), font, (255, 255, 255))
    return out


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, color: tuple[int, ...]) -> None:
    """Text with a dark halo so it reads on any background (ASCII only: cv2's Hershey fonts)."""
    safe = text.encode("ascii", "replace").decode("ascii")
    cv2.putText(img, safe, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, safe, org, cv2.FONT_HERSHEY_SIMPLEX, scale, tuple(int(c) for c in color), 1, cv2.LINE_AA)


def encode_png(rgb: np.ndarray, *, compression: int = 6) -> bytes:
    """PNG bytes of an RGB uint8 [y, x, 3] (or grey [y, x], RGBA [y, x, 4]) image; pixels only."""
    a = np.asarray(rgb)
    if a.dtype != np.uint8 or not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))) or 0 in a.shape:
        raise ExportError(f"a PNG key image must be uint8 [y, x], [y, x, 3] or [y, x, 4], got {a.shape} {a.dtype}")
    if a.ndim == 3:
        a = cv2.cvtColor(a, cv2.COLOR_RGB2BGR if a.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(a), [cv2.IMWRITE_PNG_COMPRESSION, int(compression)])
    if not ok:  # pragma: no cover - cv2 fails only on invalid input, checked above
        raise ExportError("PNG encoding failed")
    return buf.tobytes()


def write_png(path: str | Path, rgb: np.ndarray, *, compression: int = 6) -> Path:
    """Write ``rgb`` (uint8 [y, x, 3] RGB) as a PNG at full resolution, atomically; return the path.

    Raises
    ------
    ExportError
        Bad image array, disk full, folder not writable (no partial file is left).
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ExportError(f"{path}: a key image file name must end in .png")
    write_bytes_atomic(path, encode_png(rgb, compression=compression))
    log.debug("wrote key image %s", path.name)
    return path
