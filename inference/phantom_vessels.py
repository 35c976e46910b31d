"""Tube trees of the chest phantom: intrapulmonary vessels/airways and mediastinal tubes.

All coordinates in patient mm (see ``phantom_patient``). The lung trees are grown towards random
points inside each lung (``phantom_tubes.attractor_tree``), so they fill exactly the drawn lungs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from inference.phantom_tubes import Segments, attractor_tree

if TYPE_CHECKING:
    from inference.phantom_patient import Patient

__all__ = ["lung_trees", "mediastinum"]


def _u(rng: np.random.Generator, a: float, b: float) -> float:
    return float(rng.uniform(a, b))


def _lung_points(
    rng: np.random.Generator, p: Patient, side: int, n: int, z_focus: float | None = None
) -> np.ndarray:
    """Random points inside one lung (rejection sampling against ``lung_predicate``): ``n`` over the
    whole lung, or the same density restricted to 60 mm around ``z_focus``."""
    from inference.phantom_shapes import lung_predicate

    out = [np.zeros((0, 3))]
    got = 0
    z0, z1 = p.z_apex, max(p.z_dome_r, p.z_dome_l) + p.recess * 1.3
    if z_focus is not None:
        a, b = max(z0, z_focus - 60), min(z1, z_focus + 60)
        if b <= a:
            return out[0]
        n = int(n * (b - a) / (z1 - z0))
        z0, z1 = a, b
    x_max = p.A - p.wall_lat
    y_min, y_max = -(p.Ba - p.wall_ant), p.spine_y + 14 + p.gutter
    for _ in range(8):
        m = n * 2
        x = side * rng.uniform(5, x_max, m)
        y = rng.uniform(y_min, y_max, m)
        z = rng.uniform(z0, z1, m)
        ok = lung_predicate(p, x, y, z)
        q = np.stack([x[ok], y[ok], z[ok]], 1)
        out.append(q)
        got += len(q)
        if got >= n:
            break
    return np.concatenate(out)[:n]


def lung_trees(
    rng: np.random.Generator,
    p: Patient,
    n_pts: int,
    z_focus: float | None = None,
) -> tuple[Segments, Segments]:
    """Arterial and venous trees of both lungs (one forest, rooted at the hila) and the airways
    that follow the larger arteries."""
    parts, groups, roots = [], [], []
    for k, (side, hil) in enumerate(((-1, p.hilum_r), (1, p.hilum_l))):
        pts = _lung_points(rng, p, side, n_pts, z_focus)
        parts.append(pts)
        groups.append(2 * k + (rng.random(len(pts)) < 0.5))  # artery (even) / vein (odd)
        roots += [hil, hil + np.array([-side * 10.0, _u(rng, 8, 18), _u(rng, 15, 30)])]
    segs, tree = attractor_tree(
        rng,
        np.array(roots),
        np.concatenate(parts),
        groups=np.concatenate(groups),
        r_leaf=_u(rng, 0.36, 0.44),
    )
    big = (tree % 2 == 0) & (segs.r >= 1.1) & (segs.gen >= 1)
    v = segs.p1[big] - segs.p0[big]
    perp = np.cross(v, rng.normal(size=3))
    perp /= np.linalg.norm(perp, axis=1, keepdims=True) + 1e-9
    off = perp * (segs.r[big] * 1.9 + 0.8)[:, None]
    air = Segments(
        segs.p0[big] + off, segs.p1[big] + off, segs.r[big] * _u(rng, 0.8, 1.1), segs.gen[big]
    )
    return segs, air


def mediastinum(rng: np.random.Generator, q: dict) -> tuple[Segments, Segments, Segments]:
    """Great vessels, trachea/main bronchi, oesophagus as segment chains."""
    L, car = q["L"], q["z_carina"]
    z_arch = car - _u(rng, 25, 45)
    aorta_r = _u(rng, 11, 17)
    sy, sr = q["spine_y"], q["spine_r"]
    hz = q["heart_top"]
    asc0 = np.array([_u(rng, -2, 8), _u(rng, -25, -10), hz + 35])
    asc1 = np.array([_u(rng, -12, -2), _u(rng, -35, -20), z_arch + 8])
    arch_mid = np.array([_u(rng, 0, 10), _u(rng, -10, 5), z_arch])
    desc0 = np.array([sr * 0.6 + aorta_r * 0.8, sy - sr * 0.7, z_arch + 10])
    desc1 = np.array([sr * 0.5 + aorta_r * 0.6, sy - sr * 1.0, L * 0.8])
    desc2 = np.array([_u(rng, 0, 6), sy - sr - aorta_r * 0.9, L * 1.1])
    ao = [
        (asc0, asc1, aorta_r),
        (asc1, arch_mid, aorta_r * 0.95),
        (arch_mid, desc0, aorta_r * 0.9),
        (desc0, desc1, aorta_r * 0.85),
        (desc1, desc2, aorta_r * 0.8),
    ]
    # supra-aortic branches and brachiocephalic veins / SVC
    br = [
        (arch_mid + [-12, -8, 0], [-25, -12, -20], _u(rng, 5, 7)),
        (arch_mid + [0, 0, 0], [-8, -18, -20], 4.0),
        (arch_mid + [10, 5, 0], [20, -5, -20], 4.5),
        ([-28, -20, z_arch + 30], [-30, -15, hz + 20], _u(rng, 7, 10)),
        ([-28, -20, z_arch + 30], [-35, -18, -20], 6.5),
        ([-28, -20, z_arch + 5], [20, -25, z_arch - 15], 5.0),
    ]
    pa0 = np.array([_u(rng, 12, 25), _u(rng, -40, -25), hz + 25])
    pab = np.array([_u(rng, 8, 18), _u(rng, -15, -5), car + 12])
    par = q["hilum_r"]
    pal = q["hilum_l"]
    pa_r = aorta_r * _u(rng, 0.85, 1.15)
    pa = [
        (pa0, pab, pa_r),
        (pab, pal + [-8, 0, -2], pa_r * 0.75),
        (pab, par + [10, -5, 0], pa_r * 0.7),
        (pal + [-8, 0, -2], pal, pa_r * 0.6),
        (par + [10, -5, 0], par, pa_r * 0.6),
    ]
    # pulmonary veins into the left atrium (posterior heart)
    la = np.array([_u(rng, 0, 15), _u(rng, 0, 15), hz + _u(rng, 15, 30)])
    pv = [(la, par + [0, 15, 15], 6.5), (la, pal + [0, 15, 15], 6.5)]
    ivc = [(np.array([-15, sy - sr - 15, L * 1.1]), np.array([-18, 5, q["z_dome_r"] - 5]), 12.0)]
    seg = ao + br + pa + pv + ivc
    vessels = Segments(
        np.array([s[0] for s in seg]), np.array([s[1] for s in seg]), np.array([s[2] for s in seg])
    )
    # trachea and main bronchi
    tr_r = _u(rng, 8, 11)
    ty = sy - sr - _u(rng, 22, 32)
    tr0 = np.array([_u(rng, -3, 3), ty - 8, -30])
    tr1 = np.array([_u(rng, -3, 3), ty + 5, car])
    rb = np.array([par[0] + 12, par[1], car + _u(rng, 15, 28)])
    lb = np.array([pal[0] - 12, pal[1], car + _u(rng, 22, 38)])
    air = Segments(
        np.array([tr0, tr1, tr1]),
        np.array([tr1, rb, lb]),
        np.array([tr_r, tr_r * 0.72, tr_r * 0.66]),
    )
    es = Segments(
        np.array([[6, ty + 18, -30], [8, ty + 20, car]]),
        np.array([[8, ty + 20, car], [18, sy - sr - 8, L * 0.95]]),
        np.array([_u(rng, 6, 9)] * 2),
    )
    return vessels, air, es
