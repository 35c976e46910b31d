"""Lesion placement for the chest phantom: inside the lung, at the pleura, or next to a vessel."""

from __future__ import annotations

import cv2
import numpy as np

from inference.phantom_grid import Grid
from inference.phantom_patient import Patient, sample_lesion
from inference.phantom_shapes import lung_predicate

__all__ = ["place_lesions"]


def _vessel_point(p: Patient, rng: np.random.Generator, z: float) -> np.ndarray | None:
    """A point on an intrapulmonary vessel (r >= 1 mm) crossing level ``z``, or None."""
    v = p.vessels
    sel = np.flatnonzero(
        (v.r >= 1.0) & (v.zmin < z) & (v.zmax > z) & (np.abs(v.p1[:, 2] - v.p0[:, 2]) > 1e-3)
    )
    if not len(sel):
        return None
    i = int(rng.choice(sel))
    t = float(np.clip((z - v.p0[i, 2]) / (v.p1[i, 2] - v.p0[i, 2]), 0, 1))
    return v.p0[i] + t * (v.p1[i] - v.p0[i])


def place_lesions(p: Patient, g: Grid, rng: np.random.Generator, zs: list[float], k: int) -> None:
    """Add ``k`` lesions centred in lung at random planes from ``zs``: ~30 % juxtapleural (at the
    lung border), ~25 % juxtavascular (abutting a vessel), the rest anywhere in the lung."""
    for _ in range(k):
        z = float(rng.choice(zs))
        sub = (
            (slice(None, None, 2), slice(None, None, 2))
            if g.X.shape[0] > 200
            else (slice(None), slice(None))
        )
        Xs, Ys = g.X[sub], g.Y[sub]
        lung = lung_predicate(p, Xs, Ys, z)
        step = g.spacing * (2 if Xs.shape != g.X.shape else 1)
        les = sample_lesion(rng, np.zeros(3))
        # centres need lung around them (about half the radius, up to 8 mm): no lesions smeared
        # along the thin basal crescents, where partial volume of the domes already looks dense
        depth = min(0.5 * les.blob.radius, 8.0)
        k3 = np.ones((3, 3), np.uint8)
        core = cv2.erode(lung.view(np.uint8), k3, iterations=max(1, int(round(depth / step)))) > 0
        if core.sum() < 5:
            continue
        mode = rng.random()
        c = None
        if 0.3 <= mode < 0.55:  # juxtavascular
            q = _vessel_point(p, rng, z)
            if q is not None:
                ang = rng.uniform(0, 2 * np.pi)
                c = q + (les.blob.radius * 0.85 + 1.0) * np.array([np.cos(ang), np.sin(ang), 0.0])
                if not lung_predicate(p, np.array([c[0]]), np.array([c[1]]), c[2])[0]:
                    c = None
        if c is None:
            cand = core
            if mode < 0.3:  # juxtapleural: on the rim of the core, so the blob reaches the pleura
                edge = core & ~(cv2.erode(core.view(np.uint8), k3, iterations=1) > 0)
                cand = edge if edge.sum() > 3 else core
            j = int(rng.choice(np.flatnonzero(cand.ravel())))
            c = np.array([Xs.ravel()[j], Ys.ravel()[j], z + rng.uniform(-3, 3)])
        shift = np.asarray(c, np.float32) - les.blob.centre
        les.blob.centre = les.blob.centre + shift
        if les.core is not None:
            les.core.centre = les.core.centre + shift
        if les.spicules is not None:
            les.spicules = les.spicules.shifted(shift)
        p.lesions.append(les)
