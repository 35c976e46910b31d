"""Tubular structures of the chest phantom: 3D segment trees and their axial cross-sections.

Every tube (trachea, bronchi, aorta, pulmonary vessels, small intrapulmonary vessels and airways)
is a set of straight 3D segments ``(p0, p1, radius)`` in patient millimetres
(x: patient right -> left, y: anterior -> posterior, z: cranial -> caudal). A slab
``[z - dz/2, z + dz/2]`` is rendered by drawing, for every segment that crosses it, the part of
the segment inside the slab (widened by the tube's own radius) as a thick line with ``cv2.line``:
a vertical tube gives a disc, an oblique one an elongated stadium, an in-plane one a long band.
This keeps 2D slices and 3D volumes coherent and costs a few microseconds per visible segment.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["Segments", "attractor_tree", "draw_segments", "concat_segments"]

_SHIFT = 3  # cv2 fixed-point sub-pixel bits
_SCALE = float(1 << _SHIFT)


class Segments:
    """A set of 3D tube segments (patient mm).

    Parameters
    ----------
    p0, p1 : np.ndarray
        [n, 3] start and end points (x, y, z) in mm.
    r : np.ndarray
        [n] radius in mm.
    gen : np.ndarray, optional
        [n] branching generation (0 = trunk), used to pick styles (e.g. airway walls).
    """

    def __init__(
        self, p0: np.ndarray, p1: np.ndarray, r: np.ndarray, gen: np.ndarray | None = None
    ) -> None:
        self.p0 = np.asarray(p0, np.float32).reshape(-1, 3)
        self.p1 = np.asarray(p1, np.float32).reshape(-1, 3)
        self.r = np.asarray(r, np.float32).reshape(-1)
        self.gen = (
            np.zeros(len(self.r), np.int16)
            if gen is None
            else np.asarray(gen, np.int16).reshape(-1)
        )
        self.zmin = np.minimum(self.p0[:, 2], self.p1[:, 2]) - self.r
        self.zmax = np.maximum(self.p0[:, 2], self.p1[:, 2]) + self.r

    def __len__(self) -> int:
        return len(self.r)

    def subset(self, keep: np.ndarray) -> Segments:
        """Segments selected by a boolean or index array."""
        return Segments(self.p0[keep], self.p1[keep], self.r[keep], self.gen[keep])

    def shifted(self, dxyz: np.ndarray) -> Segments:
        """A copy translated by ``dxyz`` (mm)."""
        d = np.asarray(dxyz, np.float32)
        return Segments(self.p0 + d, self.p1 + d, self.r, self.gen)


def concat_segments(parts: list[Segments]) -> Segments:
    """Concatenate several segment sets."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return Segments(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0))
    return Segments(
        np.concatenate([p.p0 for p in parts]),
        np.concatenate([p.p1 for p in parts]),
        np.concatenate([p.r for p in parts]),
        np.concatenate([p.gen for p in parts]),
    )


def draw_segments(
    img: np.ndarray,
    segs: Segments,
    z: float,
    dz: float,
    to_px: tuple[float, float, float, float, float, float],
    spacing: float,
    *,
    radius_scale: float = 1.0,
    radius_add: float = 0.0,
    value: float = 1.0,
) -> None:
    """Draw the cross-sections of ``segs`` in the slab ``[z - dz/2, z + dz/2]`` into ``img``.

    Parameters
    ----------
    img : np.ndarray
        float32 [ny, nx] image modified in place (values are overwritten, not added).
    segs : Segments
        Tubes in patient mm.
    z, dz : float
        Slab centre and thickness (mm).
    to_px : tuple
        Affine (a, b, c, d, e, f): col = a*x + b*y + c, row = d*x + e*y + f (pixels).
    spacing : float
        Pixel size (mm), used for line thickness and sub-pixel partial volume.
    radius_scale, radius_add : float
        Drawn radius = r * radius_scale + radius_add (mm); lumens use scale < 1.
    value : float
        Value drawn at full coverage; thin or in-plane tubes get a proportionally smaller value.
    """
    if not len(segs):
        return
    sel = (segs.zmax >= z - dz / 2) & (segs.zmin <= z + dz / 2)
    if not sel.any():
        return
    p0, p1 = segs.p0[sel].astype(np.float64), segs.p1[sel].astype(np.float64)
    r = segs.r[sel].astype(np.float64) * radius_scale + radius_add
    ok = r > 0.05
    p0, p1, r = p0[ok], p1[ok], r[ok]
    v = p1 - p0
    length = np.linalg.norm(v, axis=1) + 1e-9
    uz = np.abs(v[:, 2]) / length
    hw = r * np.sqrt((1 - uz) / (1 + uz + 1e-9)) + dz / 2
    vz = v[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        ta = (z - hw - p0[:, 2]) / vz
        tb = (z + hw - p0[:, 2]) / vz
    flat = np.abs(vz) < 1e-6
    t0 = np.where(flat, 0.0, np.minimum(ta, tb))
    t1 = np.where(flat, 1.0, np.maximum(ta, tb))
    t0, t1 = np.clip(t0, 0, 1), np.clip(t1, 0, 1)
    # in-plane (flat) tubes only intersect if the slab is within the radius
    dzc = np.abs(p0[:, 2] - z)
    r_eff = np.where(flat, np.sqrt(np.clip(r**2 - np.clip(dzc - dz / 2, 0, None) ** 2, 0, None)), r)
    vis = (t1 > t0) | (flat & (r_eff > 0))
    q0 = p0 + v * t0[:, None]
    q1 = p0 + v * t1[:, None]
    zext = np.abs(q1[:, 2] - q0[:, 2])
    w = np.clip((2 * r_eff + zext) / max(dz, 1e-3), 0, 1)
    a, b, c, d, e, f = to_px
    c0 = (a * q0[:, 0] + b * q0[:, 1] + c) * _SCALE
    r0 = (d * q0[:, 0] + e * q0[:, 1] + f) * _SCALE
    c1 = (a * q1[:, 0] + b * q1[:, 1] + c) * _SCALE
    r1 = (d * q1[:, 0] + e * q1[:, 1] + f) * _SCALE
    thick_px = 2 * r_eff / spacing
    th = np.maximum(1, np.rint(thick_px)).astype(int)
    w = w * np.clip(thick_px, 0, 1) * value
    ny, nx = img.shape
    lim = 4 * max(nx, ny) * _SCALE
    inside = (
        vis
        & (w > 0.02)
        & (np.abs(c0) < lim)
        & (np.abs(r0) < lim)
        & (np.abs(c1) < lim)
        & (np.abs(r1) < lim)
    )
    idx = np.flatnonzero(inside)
    idx = idx[np.argsort(w[idx], kind="stable")]  # strongest last: overwrite approximates max()
    for i in idx:
        cv2.line(
            img,
            (int(c0[i]), int(r0[i])),
            (int(c1[i]), int(r1[i])),
            float(w[i]),
            int(th[i]),
            cv2.LINE_8,
            _SHIFT,
        )


def attractor_tree(
    rng: np.random.Generator,
    root: np.ndarray,
    pts: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    r_leaf: float = 0.32,
    exponent: float = 3.0,
    reach: tuple[float, float] = (0.35, 0.65),
    first_reach: float = 0.25,
    max_gen: int = 20,
) -> tuple[Segments, np.ndarray]:
    """Space-filling trees that serve the attractor points ``pts`` ([n, 3] mm) from their roots.

    ``root`` is one point [3] or several [k, 3]; ``groups`` ([n] ints in 0..k-1) says which root
    serves each point (a forest grows in one vectorised pass). Per generation every branch heads a
    fraction ``reach`` of the way towards the centroid of the points it serves, then splits them in
    two along their axis of largest variance. Radii follow Murray's law,
    ``r = r_leaf * n_served ** (1 / exponent)``: thick trunks at the hilum, thin twigs at pleura.

    Returns
    -------
    (Segments, np.ndarray)
        The segments and, per segment, the index of the root it grew from.
    """
    pts = np.asarray(pts, np.float64)
    roots = np.asarray(root, np.float64).reshape(-1, 3)
    n = len(pts)
    empty = Segments(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0))
    if n == 0:
        return empty, np.zeros(0, np.int64)
    g = np.zeros(n, np.int64) if groups is None else np.asarray(groups, np.int64)
    used = np.flatnonzero(np.bincount(g, minlength=len(roots)) > 0)
    remap = np.full(len(roots), -1, np.int64)
    remap[used] = np.arange(len(used))
    bid = remap[g]
    starts = roots[used]
    tid = used.copy()
    live = np.arange(n)
    o0, o1, orr, og, ot = [], [], [], [], []
    three = np.arange(3)
    for gen in range(max_gen):
        nb = len(starts)
        P = pts[live]
        idx3 = (bid[:, None] * 3 + three).ravel()
        cnt = np.bincount(bid, minlength=nb).astype(np.float64)
        cen = np.bincount(idx3, weights=P.ravel(), minlength=3 * nb).reshape(nb, 3) / cnt[:, None]
        f = rng.uniform(*reach, size=nb) if gen else np.full(nb, first_reach)
        f = np.where(cnt <= 1, 1.0, f)
        ends = starts + (cen - starts) * f[:, None]
        o0.append(starts)
        o1.append(ends)
        orr.append(r_leaf * cnt ** (1.0 / exponent))
        og.append(np.full(nb, gen))
        ot.append(tid)
        alive = cnt[bid] >= 2
        if not alive.any():
            break
        sq = np.bincount(idx3, weights=(P * P).ravel(), minlength=3 * nb).reshape(nb, 3)
        var = sq / cnt[:, None] - cen**2 + rng.uniform(0, 4.0, size=(nb, 3))  # jittered splits
        axis = np.argmax(var, axis=1)
        a_pt = axis[bid]
        side = P[np.arange(len(P)), a_pt] > cen[bid, a_pt]
        key = bid * 2 + side
        live, key = live[alive], key[alive]
        present = np.bincount(key, minlength=2 * nb) > 0  # relabel children without sorting
        newid = np.cumsum(present) - 1
        parent = np.flatnonzero(present) // 2
        starts, tid = ends[parent], tid[parent]
        bid = newid[key]
    segs = Segments(np.concatenate(o0), np.concatenate(o1), np.concatenate(orr), np.concatenate(og))
    return segs, np.concatenate(ot)
