"""Lesion placement for the chest phantom: inside the lung, at the pleura, next to a vessel, or a
large central (hilar/perihilar) mass on the medial lung border that reaches into the mediastinum."""

from __future__ import annotations

import cv2
import numpy as np

from inference.phantom_grid import Grid
from inference.phantom_patient import Lesion, Patient, sample_lesion
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


def _moved(les: Lesion, centre: np.ndarray) -> Lesion:
    """``les`` translated so that its blob is centred at ``centre`` (mm), core and spicules with it."""
    shift = np.asarray(centre, np.float32) - les.blob.centre
    les.blob.centre = les.blob.centre + shift
    if les.core is not None:
        les.core.centre = les.core.centre + shift
    if les.spicules is not None:
        les.spicules = les.spicules.shifted(shift)
    return les


def _hilar_mass(
    p: Patient, rng: np.random.Generator, Xs: np.ndarray, lung: np.ndarray, z: float
) -> Lesion | None:
    """A 25-75 mm solid mass centred in the lung just lateral to one hilum (it abuts or invades the
    mediastinum, as central lung cancers do), or None when level ``z`` is not a perihilar level or
    the centre would not be in lung."""
    if not (p.z_carina - 15.0 < z < max(p.hilum_r[2], p.hilum_l[2]) + 70.0):
        return None
    side = -1 if rng.random() < 0.5 else 1  # -1: right lung (X < 0), +1: left
    hil = p.hilum_r if side < 0 else p.hilum_l  # where the main bronchus and vessels enter the lung
    if not (lung & ((Xs * side) > 0)).any():
        return None
    diameter = float(np.exp(rng.uniform(np.log(25.0), np.log(75.0))))
    les = sample_lesion(rng, np.zeros(3), diameter)
    if les.kind == "ggo":  # central masses are solid (a part-solid one keeps its core)
        les.kind, les.hu = "solid", float(rng.uniform(15.0, 55.0))
    r = les.blob.radius
    # lateral to the hilum, so most of the mass is in the lung and its medial part abuts/invades
    # the mediastinum; up to 25 mm anterior/posterior of the hilar point
    centre = np.array([hil[0] + side * r * rng.uniform(0.35, 0.8), hil[1] + rng.uniform(-25.0, 25.0),
                       z + rng.uniform(-0.3, 0.3) * r])
    if not lung_predicate(p, centre[:1], centre[1:2], z)[0]:
        return None
    return _moved(les, centre)


def place_lesions(
    p: Patient, g: Grid, rng: np.random.Generator, zs: list[float], k: int, hilar_prob: float = 0.0
) -> None:
    """Add ``k`` lesions centred in lung at random planes from ``zs``: with probability
    ``hilar_prob`` a large central mass at the hilum (see ``_hilar_mass``; falls back to the other
    kinds away from the hila), otherwise ~30 % juxtapleural (at the lung border), ~25 %
    juxtavascular (abutting a vessel), the rest anywhere in the lung."""
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
        if hilar_prob > 0 and rng.random() < hilar_prob:  # no draw at all when off: same streams
            hm = _hilar_mass(p, rng, Xs, lung, z)
            if hm is not None:
                p.lesions.append(hm)
                continue
        # at and below the dome tops the lung is a crescent around the liver/spleen: a large lesion
        # there is drawn over the dome and looks exactly like the dome's own cross-section, which
        # taught the model to call real domes "lesion". Basal lesions are <= 20 mm and wholly in lung.
        basal = z > min(p.z_dome_r, p.z_dome_l) - 10.0
        if basal:
            les = sample_lesion(rng, np.zeros(3), float(np.exp(rng.uniform(np.log(3.0), np.log(20.0)))))
        else:
            les = sample_lesion(rng, np.zeros(3))
        # centres need lung around them (about half the radius, up to 8 mm; the whole radius at the
        # bases): no lesions smeared along the thin basal crescents
        depth = les.blob.radius + 2.0 if basal else min(0.5 * les.blob.radius, 8.0)
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
        p.lesions.append(_moved(les, c))
