"""Pixel grids in patient millimetres and texture fields for the chest phantom.

A ``Grid`` maps every pixel to patient coordinates (x patient right -> left, y anterior ->
posterior, mm) and carries the affine back to pixels for ``cv2`` drawing. ``Tex`` hands out
smooth random fields (cheap views of a few base fields).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from inference.phantom_patient import Blob

__all__ = ["Grid", "Tex", "TexWin", "blob_fraction", "make_grid", "roi", "smooth_noise", "subgrid"]

_F = np.float32


@dataclass
class Grid:
    """Pixel grid in patient mm: ``X``, ``Y`` [ny, nx]; ``to_px`` affine for ``draw_segments``."""

    X: np.ndarray
    Y: np.ndarray
    spacing: float
    to_px: tuple[float, float, float, float, float, float]
    th: np.ndarray  # atan2(Y, X): 0 = patient left, +pi/2 = posterior
    cache: dict = field(default_factory=dict)


def make_grid(
    n: int,
    spacing: float,
    offset: tuple[float, float] = (0.0, 0.0),
    angle_deg: float = 0.0,
    ny: int | None = None,
) -> Grid:
    """Grid of ``ny`` x ``n`` pixels of ``spacing`` mm; patient shifted by ``offset`` (mm, x/y)
    and rolled by ``angle_deg`` about the z axis."""
    ny = n if ny is None else ny
    cols = (np.arange(n, dtype=_F) - (n - 1) / 2) * spacing
    rows = (np.arange(ny, dtype=_F) - (ny - 1) / 2) * spacing
    gx, gy = np.meshgrid(cols - offset[0], rows - offset[1])
    a = np.deg2rad(angle_deg)
    ca, sa = np.cos(a), np.sin(a)
    X = (ca * gx + sa * gy).astype(_F)
    Y = (-sa * gx + ca * gy).astype(_F)
    s = spacing
    to_px = (
        ca / s,
        -sa / s,
        offset[0] / s + (n - 1) / 2,
        sa / s,
        ca / s,
        offset[1] / s + (ny - 1) / 2,
    )
    return Grid(X, Y, spacing, to_px, np.arctan2(Y, X).astype(_F))


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Zero-mean, unit-std Gaussian-filtered white noise (float32); coarse fields are made at low
    resolution and upsampled (same look, a fraction of the cost)."""
    h, w = shape
    f = int(max(1, min(sigma_px / 1.5, 8)))
    sh = (max(2, h // f), max(2, w // f))
    n = rng.random(sh, dtype=_F) - _F(
        0.5
    )  # uniform is ~3x cheaper; the blur makes it Gaussian-like
    s = sigma_px / f
    if s > 0.3:
        n = cv2.GaussianBlur(n, (0, 0), s)
    if f > 1:
        n = cv2.resize(n, (w, h), interpolation=cv2.INTER_LINEAR)
    return n / (n.std() + 1e-6)


class Tex:
    """Lazily generated texture fields shared by the planes of one slab.

    ``tex(sigma_px, k)`` returns a unit-std field of correlation length ``sigma_px``; variants
    ``k`` of the same sigma are flips/transposes/negations of one base field (free views), so a
    plane needs only a few random fields.
    """

    def __init__(self, rng: np.random.Generator, shape: tuple[int, int]) -> None:
        self.rng, self.shape, self._f = rng, shape, {}

    def __call__(self, sigma_px: float, k: int = 0) -> np.ndarray:
        key = round(float(np.clip(sigma_px, 0.5, 12.0)) * 2) / 2
        base = self._f.get(key)
        if base is None:
            base = self._f[key] = smooth_noise(self.rng, self.shape, key)
        k = k % 8
        f = base[::-1] if k & 1 else base
        f = f[:, ::-1] if k & 2 else f
        if k & 4:
            f = -f
        return f


class TexWin:
    """A window onto a ``Tex`` (same fields, cropped)."""

    def __init__(self, tex: Tex, win: tuple[slice, slice]) -> None:
        self.tex, self.win, self.rng = tex, win, tex.rng

    def __call__(self, sigma_px: float, k: int = 0) -> np.ndarray:
        return self.tex(sigma_px, k)[self.win]


def subgrid(g: Grid, win: tuple[slice, slice]) -> Grid:
    a, b, c, d, e, f = g.to_px
    return Grid(
        g.X[win], g.Y[win], g.spacing, (a, b, c - win[1].start, d, e, f - win[0].start), g.th[win]
    )


def blob_fraction(g: Grid, b: Blob, z: float, edge_mm: float = 0.8) -> np.ndarray | None:
    """Soft occupancy [0, 1] of blob ``b`` in plane ``z`` (None when the plane misses it)."""
    rmax = (
        b.radius * (1 + max(0.0, float(b.bumps[:, 3].max(initial=0))) + 0.05) * float(b.axes.max())
    )
    if abs(z - b.centre[2]) > rmax:
        return None
    win = roi(g, float(b.centre[0]), float(b.centre[1]), rmax + 3)
    if win is None:
        return None
    Xw, Yw = g.X[win], g.Y[win]
    dzp = (z - b.centre[2]) / b.axes[2]
    dx = (Xw - b.centre[0]) / b.axes[0]
    dy = (Yw - b.centre[1]) / b.axes[1]
    rr = np.sqrt(dx * dx + dy * dy + dzp * dzp) + 1e-6
    u = np.stack([dx / rr, dy / rr, dzp / rr], -1)
    fac = 1 + (np.exp((u @ b.bumps[:, :3].T - 1) / b.width) * b.bumps[:, 3]).sum(-1)
    out = np.zeros(g.X.shape, _F)
    out[win] = np.clip((b.radius * fac - rr) / edge_mm + 0.5, 0, 1)
    return out


def roi(g: Grid, cx: float, cy: float, r: float) -> tuple[slice, slice] | None:
    """Row/column slices of pixels within ``r`` mm of patient point (cx, cy); None if outside."""
    a, b, c, d, e, f = g.to_px
    col = a * cx + b * cy + c
    row = d * cx + e * cy + f
    rp = r / g.spacing * 1.1 + 2
    ny, nx = g.X.shape
    r0, r1 = int(max(0, row - rp)), int(min(ny, row + rp + 1))
    c0, c1 = int(max(0, col - rp)), int(min(nx, col + rp + 1))
    if r0 >= r1 or c0 >= c1:
        return None
    return slice(r0, r1), slice(c0, c1)
