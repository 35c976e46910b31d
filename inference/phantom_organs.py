"""Organs of the chest phantom drawn into an HU plane: bones, heart chambers, upper abdomen.

Helpers of ``phantom_render.render_plane``; every function edits ``hu`` in place and works on
patient-mm grids (see ``phantom_patient`` for the coordinate convention).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from inference.phantom_grid import roi
from inference.phantom_shapes import heart_field, smoothstep, spine_radius

if TYPE_CHECKING:
    from inference.phantom_patient import Patient

__all__ = ["abdomen", "bones", "heart_detail", "roi"]

_F = np.float32


def _bone(
    hu: np.ndarray, mask: np.ndarray, inner: np.ndarray, cortex: float, marrow: float
) -> None:
    hu[mask] = cortex
    hu[mask & inner] = marrow


def heart_detail(p: Patient, g: Any, z: float, hu: np.ndarray, heart: np.ndarray, tex: Any) -> None:
    """Myocardium, chambers (bright with contrast), septum and epicardial fat."""
    hx, hy, ha, hb, hang, ztop, zbot = p.heart
    a = np.deg2rad(hang)
    X, Y = g.X, g.Y
    u = (X - hx) * np.cos(a) + (Y - hy) * np.sin(a)
    v = -(X - hx) * np.sin(a) + (Y - hy) * np.cos(a)
    e = heart_field(p, X, Y, z)
    myo = _F(42 + (55 if p.contrast else 0))
    hu[heart] = myo + 6 * tex(1.5, 20)[heart]
    tt = (z - ztop) / (zbot - ztop)
    # chambers: LV (thick wall) towards the apex, RV anterior-right, atria posterior/upper
    lv = ((u - ha * 0.28) / (ha * 0.36)) ** 2 + ((v - hb * 0.05) / (hb * 0.42)) ** 2
    rv = ((u + ha * 0.2) / (ha * 0.5)) ** 2 + ((v + hb * 0.3) / (hb * 0.38)) ** 2
    atria = ((u + ha * 0.05) / (ha * 0.7)) ** 2 + ((v - hb * 0.35) / (hb * 0.42)) ** 2
    blood = (
        heart
        & (e < 0.86)
        & ((lv < 1) | ((rv < 1) & (lv > 1.9)) | ((atria < 1) & (tt < 0.55) & (lv > 1.6)))
    )
    hu[blood] = _F(p.blood_hu) if p.contrast else _F(p.blood_hu + 4)
    # epicardial fat, mostly in the grooves and over the anterior surface
    fat = heart & (e > 0.88) & (tex(2.0, 21) > 0.2 - 0.6 * (v < 0))
    hu[fat] = -95


def abdomen(p: Patient, g: Any, z: float, hu: np.ndarray, abd: np.ndarray, tex: Any) -> None:
    """Liver, spleen, stomach (gas + mottled food), colon gas, kidneys, fat and bowel."""
    X, Y, L = g.X, g.Y, p.length
    loops = tex(3.5, 30)
    hu[abd] = np.where(loops[abd] > 0.3, 35, -95)
    liv_hu = 110 if p.contrast else 58
    xl = (
        10 + 55 * np.clip(-Y / p.Bp, 0, 1.2) - 30 * np.clip(Y / p.Bp, 0, 1) ** 2 + 10 * tex(8.0, 31)
    )
    liver = abd & (X < xl) & (z > p.z_dome_r)
    hu[liver] = liv_hu + 7 * tex(2.0, 32)[liver]
    if p.contrast:
        hv = tex(1.5, 33)
        hu[liver & (np.abs(hv) < 0.07)] = 170
    zs = p.z_dome_l + 8
    if zs < z < zs + 120:
        pr = np.sqrt(max(0.0, 1 - ((z - zs - 55) / 62) ** 2))
        sp = abd & (
            (
                ((X - p.A * 0.42) / (28 * pr + 1e-3)) ** 2
                + ((Y - p.Bp * 0.35) / (55 * pr + 1e-3)) ** 2
            )
            <= 1
        )
        hu[sp] = 120 if p.contrast else 48
    sx, sy, rx, ry, zt, zl, af = p.stomach
    if zt < z < zt + zl:
        pr = np.sqrt(max(0.0, 1 - ((z - zt - zl / 2) / (zl / 2)) ** 2)) ** 0.5
        e = ((X - sx) / (rx * pr + 1e-3)) ** 2 + ((Y - sy) / (ry * pr + 1e-3)) ** 2
        st = abd & (e <= 1)
        level = sy - ry * pr + 2 * ry * pr * af
        food = tex(1.2, 34)
        cont = np.where(Y < level, _F(-990), np.where(food > 0.9, _F(-750), 20 + 40 * food))
        hu[st] = cont[st]
        hu[st & (e > 0.85)] = 40  # wall
    if z > p.z_dome_l + 0.08 * L:
        co = abd & (((X - p.A * 0.5) / 26) ** 2 + ((Y + p.Bp * 0.25) / 22) ** 2 <= 1)
        sto = tex(1.0, 35)
        hu[co] = np.where(sto[co] > 0.7, _F(-950), -60 + 50 * sto[co])
    if z > p.z_dome_r + 0.15 * L:
        for side in (-1, 1):
            k = abd & (((X - side * 62) / 27) ** 2 + ((Y - p.spine_y + 5) / 34) ** 2 <= 1)
            hu[k] = 150 if p.contrast else 32


def bones(
    p: Patient,
    g: Any,
    z: float,
    hu: np.ndarray,
    dist_in: np.ndarray,
    fat_th: np.ndarray,
    cav: np.ndarray,
    psi: np.ndarray,
    arms: list,
    tex: Any,
) -> None:
    """Ribs and costal cartilage, vertebra, sternum, scapulae, clavicles, humeri."""
    import cv2

    X, Y, L, s = g.X, g.Y, p.length, g.spacing
    zf = z / L
    sy, sr = p.spine_y, float(spine_radius(p, z))
    # ribs: oval cross-sections in a band just outside the pleura, periodic in z, sloping forward
    dco = np.minimum(cv2.distanceTransform((~cav).view(np.uint8), cv2.DIST_L2, 3), _F(1e5)) * _F(s)
    band = (dco > 0.5) & (dco < 9.5) & (np.abs(X) > sr + 6)
    # fat between the rib cage and the pectoral / serratus muscles (thicker in obese patients)
    t_sub = 1.0 + 0.15 * p.fat
    sub = (dco > 10.0) & (dco < 10.0 + t_sub) & (psi > 1.3) & (dist_in > fat_th + 2) & ~cav
    hu[sub] = -95
    if zf > 0.0 and band.any():
        drop = p.rib_drop * (0.7 * psi[band] / np.pi + 0.3 * (1 - np.cos(psi[band])) / 2)
        ph = ((z - drop) / p.rib_pitch + p.rib_phase) % 1.0
        h = 11.0 / p.rib_pitch
        ru = (dco[band] - 5.0) / 3.6
        rv = (ph - h / 2) / (h / 2)
        q = ru * ru + rv * rv
        rib = q <= 1
        cart = psi[band] > 2.45
        vals = np.where(q > 0.45, _F(950), _F(220))
        vals = np.where(cart, _F(140), vals)
        cur = hu[band]
        hu[band] = np.where(rib & ((~cart) | (np.abs(X[band]) > 18)), vals, cur)
    # vertebra: body or disc, canal, arch, spinous and transverse processes
    win = roi(g, 0.0, sy + 25, sr + 60)
    if win is not None:
        Xw, Yw, hw = X[win], Y[win], hu[win]
        vp = ((z / p.vert_pitch) + p.vert_phase) % 1.0
        rv2 = Xw * Xw + (Yw - sy) ** 2
        vb = rv2 < sr * sr
        if vp < 0.17:
            hw[vb] = 85
        else:
            _bone(hw, vb, rv2 < (sr - 2.2) ** 2, 650, 200 + 40 * float(tex.rng.random()))
        cy = sy + sr + 8
        rc2 = Xw * Xw + (Yw - cy) ** 2
        if vp > 0.25:
            arch = (rc2 < 15**2) & (rc2 > 8**2) & (Yw > sy + sr - 3)
            hw[arch] = 850
            if vp > 0.45:
                hw[(np.abs(Xw) < 4) & (Yw > cy + 10) & (Yw < cy + 38)] = 750
            if 0.3 < vp < 0.75:
                hw[(np.abs(Yw - cy + 3) < 5) & (np.abs(Xw) > 8) & (np.abs(Xw) < 34)] = 650
        hw[rc2 < 7.5**2] = 15  # canal: CSF / cord
    # sternum (manubrium wider)
    if 0.11 * L < z < 0.64 * L:
        ys = float(
            np.clip(
                -p.Ba * (0.84 + 0.16 * smoothstep(0.0, 0.55, zf)) + p.wall_ant * 0.55 + 2, -p.Ba, 0
            )
        )
        win = roi(g, 0.0, ys, 30)
        if win is not None:
            wsx = 24.0 if z < 0.26 * L else 13.0
            e = (X[win] / wsx) ** 2 + ((Y[win] - ys) / 6.5) ** 2
            _bone(hu[win], e <= 1, e <= 0.45, 750, 170)
    # scapulae: posterolateral plates in the muscle layer, tapering to the inferior angle
    if zf < 0.5:
        w = 1 - zf / 0.5
        sc = (
            (np.abs(dist_in - fat_th - 10) < 2.2)
            & (psi > 0.5)
            & (psi < 0.55 + 0.8 * w + 0.15)
            & ~cav
        )
        hu[sc] = 780
    # clavicles and humeral heads near the thoracic inlet
    if zf < 0.14:  # clavicles: rise laterally, so a plane cuts only a segment of each
        zc = 0.085 * L - 0.28 * (np.abs(X) - 20)
        yc = -p.Ba * 0.8 + p.fat + 6 + 45 * np.clip(np.abs(X) / (p.A * 0.85), 0, 1) ** 2
        cl = (
            (np.abs(Y - yc) < 5.5)
            & (np.abs(X) > 15)
            & (np.abs(X) < p.A * 0.85)
            & (np.abs(z - zc) < 7)
        )
        _bone(hu, cl, np.abs(Y - yc) < 3.0, 900, 250)
    for cx, cy, _ra in arms:
        rr2 = (X - cx) ** 2 + (Y - cy) ** 2
        rh = 11.0 if zf > 0.1 else 21.0
        _bone(hu, rr2 < rh * rh, rr2 < (rh - 3.5) ** 2, 1150, -40 if zf > 0.1 else 180)
