"""Analytic shapes of the chest phantom, evaluated on arrays of patient coordinates (mm).

Shared by the renderer (pixel grids) and the vessel-tree growth (3D attractor points), so the
trees fill exactly the lungs that are drawn. All functions accept ``X``, ``Y`` arrays and a scalar
or broadcastable array ``z``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from inference.phantom_patient import Patient

__all__ = [
    "smoothstep",
    "body_axes",
    "cavity_axes",
    "cavity_field",
    "dome_height",
    "apex_envelope",
    "heart_field",
    "spine_radius",
    "lung_predicate",
]

_F = np.float32


def smoothstep(a: float, b: float, x: np.ndarray | float) -> np.ndarray:
    """Cubic ramp from 0 at ``a`` to 1 at ``b`` (either order)."""
    t = np.clip((np.asarray(x, _F) - a) / (b - a), 0, 1)
    return t * t * (3 - 2 * t)


def body_axes(p: Patient, z: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Body half-width ``A`` and anterior half-depth ``Ba`` at ``z`` (posterior: ``p.Bp``)."""
    zf = np.asarray(z, _F) / p.length
    A = p.A * (1 + 0.06 * smoothstep(0.1, 0.0, zf)) * (1 - 0.04 * smoothstep(0.85, 1.05, zf))
    Ba = p.Ba * (0.84 + 0.16 * smoothstep(0.0, 0.55, zf))
    return A, Ba


def cavity_axes(p: Patient, z: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inner chest wall half-width, anterior and posterior half-depths at ``z`` (mm).

    The thorax is a truncated cone: narrow at the inlet, widest at the lower ribs.
    """
    zf = np.asarray(z, _F) / p.length
    taper = 0.54 + 0.46 * smoothstep(-0.1, 0.5, zf)
    A, Ba = body_axes(p, z)
    Ai = (A - p.wall_lat) * taper
    Bai = (Ba - p.wall_ant) * (0.7 + 0.3 * smoothstep(0.02, 0.45, zf))
    Bpi = np.full_like(Ai, p.spine_y + 14 + p.gutter)
    return Ai, Bai, Bpi


def cavity_field(p: Patient, X: np.ndarray, Y: np.ndarray, z: np.ndarray | float) -> np.ndarray:
    """Normalised super-ellipse radius of the thoracic cavity (< 1 inside)."""
    Ai, Bai, Bpi = cavity_axes(p, z)
    yn = np.where(Y < 0, Y / Bai, Y / Bpi)
    xn = (X - p.cav_dx) / Ai
    # exponent 2 anteriorly, squarer (~2.5) posteriorly: posterior gutters are deep and round
    ax, ay = np.abs(xn), np.abs(yn)
    a2, y2 = ax * ax, ay * ay
    ant = np.sqrt(a2 + y2)
    post = 0.5 * (np.cbrt(a2 * ax + y2 * ay) + ant)  # ~ exponent 2.5
    return np.where(Y < 0, ant, post)


def dome_height(p: Patient, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """z (mm) of the diaphragm surface: lung exists where ``z < dome_height``.

    Each hemidiaphragm is a dome, highest near its centre, falling into the lateral and deep
    posterior costophrenic recesses. The right (liver) dome is usually higher.
    """
    rr = np.where(X < 0, p.z_dome_r, p.z_dome_l)
    cx = np.where(X < 0, -p.dome_cx, p.dome_cx)
    ry = p.dome_ry
    if p.post_recess > 0:  # the dome falls faster behind its top: below it the liver/spleen section
        # is a convex (elliptical) bulge with a thick posterior lung band around it, as on real CT
        ry = np.where(Y > p.dome_cy, ry / (1.0 + p.post_recess / max(p.recess, 1.0)), ry).astype(Y.dtype)
    d2 = ((X - cx) / p.dome_rx) ** 2 + ((Y - p.dome_cy) / ry) ** 2
    d2 = np.clip(d2, 0, 2.2)
    dome = 0.3 * d2 + 0.9 * np.sqrt(d2)
    # near the chest wall the surface plunges into the recesses: level sets follow the wall, so
    # slices below the dome tops show lung crescents of even thickness along the ribs
    rho = np.clip(cavity_field(p, X, Y, p.z_dome_r), 0, 1.2)
    r3 = rho * rho * rho
    wpost = np.clip(0.5 + 0.6 * Y / p.Bp, 0.1, 1.0)  # deep posterior recess, shallow anterior one
    h = rr + p.recess * (0.6 * dome + 0.9 * r3 * r3 * wpost)
    yp = np.clip(Y / p.Bp, 0, 1)
    return h + 0.35 * p.recess * yp * yp


def apex_envelope(p: Patient, X: np.ndarray, Y: np.ndarray, z: np.ndarray | float) -> np.ndarray:
    """Bool: inside the cone-shaped apical envelope (limits the lung near the apices)."""
    zf = np.asarray(z, _F)
    d = np.clip(zf - p.z_apex, 0, None)
    R = 32.0
    # a rounded apical cap of radius R, then a cone widening ~1.7 mm per mm
    ax = np.where(d < R, np.sqrt(np.clip(2 * R * d - d * d, 0, None)), R + 1.7 * (d - R)) + 1e-3
    ay = ax * 1.25
    sig = np.clip(d / (0.3 * p.length), 0, 1)
    cx = 40 + 25 * sig
    cy = p.spine_y * 0.45 * (1 - sig)
    return (((np.abs(X) - cx) / ax) ** 2 + ((Y - cy) / ay) ** 2 <= 1) & (d > 0)


def heart_field(p: Patient, X: np.ndarray, Y: np.ndarray, z: np.ndarray | float) -> np.ndarray:
    """Normalised elliptical radius of the heart at ``z`` (< 1 inside; inf outside its z-range)."""
    hx, hy, ha, hb, hang, ztop, zbot = p.heart
    zz = np.asarray(z, _F)
    tt = (zz - ztop) / (zbot - ztop)
    pr = np.sqrt(np.clip(1 - ((tt - 0.6) / 0.64) ** 2, 0, 1)) * (0.75 + 0.25 * np.clip(tt, 0, 1))
    a = np.deg2rad(hang)
    u = (X - hx) * np.cos(a) + (Y - hy) * np.sin(a)
    v = -(X - hx) * np.sin(a) + (Y - hy) * np.cos(a)
    e = np.sqrt((u / (ha * pr + 1e-3)) ** 2 + (v / (hb * pr + 1e-3)) ** 2)
    return np.where(pr > 0.05, e, np.inf)


def spine_radius(p: Patient, z: np.ndarray | float) -> np.ndarray:
    """Vertebral body radius (mm): grows caudally."""
    return p.spine_r * (0.85 + 0.3 * np.asarray(z, _F) / p.length)


def lung_predicate(p: Patient, X: np.ndarray, Y: np.ndarray, z: np.ndarray | float) -> np.ndarray:
    """Approximate lung membership (bool) ignoring tubes: cavity, apex, diaphragm, heart, spine."""
    sr = spine_radius(p, z)
    inside = cavity_field(p, X, Y, z) < 1
    inside &= np.asarray(z) < dome_height(p, X, Y)
    inside &= apex_envelope(p, X, Y, z)
    inside &= heart_field(p, X, Y, z) > 1.15
    inside &= ~((np.abs(X) < sr + 6) & (Y > p.spine_y - sr - 10))
    inside &= np.abs(X - p.med_x) > 14
    return inside
