"""Render one thin axial plane of a phantom patient: HU before blur/noise, lung and lesion maps.

Everything is evaluated on a pixel grid in patient millimetres (see ``phantom_patient``):
analytic shapes from ``phantom_shapes`` (body, chest cavity, diaphragm domes, apical cone,
heart), distance-to-skin layers, periodic rib/vertebra phases (``phantom_organs``) and tubes
drawn with ``phantom_tubes.draw_segments``.
"""

from __future__ import annotations

import cv2
import numpy as np

from inference.phantom_grid import (
    Grid,
    Tex,
    TexWin,
    blob_fraction,
    roi,
    subgrid,
)
from inference.phantom_organs import abdomen, bones, heart_detail
from inference.phantom_patient import Patient
from inference.phantom_shapes import (
    apex_envelope,
    body_axes,
    cavity_field,
    dome_height,
    heart_field,
    smoothstep,
    spine_radius,
)
from inference.phantom_tubes import Segments, draw_segments

__all__ = ["render_base", "render_plane", "render_tubes"]

_F = np.float32


def _tube(g: Grid, segs: Segments, z: float, dz: float, **kw: float) -> np.ndarray:
    m = np.zeros(g.X.shape, _F)
    draw_segments(m, segs, z, dz, g.to_px, g.spacing, **kw)
    return m


def render_tubes(p: Patient, g: Grid, z: float, dz: float) -> dict[str, np.ndarray]:
    """Occupancy maps of the tubes crossing the slab ``[z - dz/2, z + dz/2]`` (once per slab)."""
    return {
        "mv": _tube(g, p.mediastinal, z, dz),
        "mvd": _tube(g, p.mediastinal, z, dz, radius_add=4.0),
        "mair": _tube(g, p.airways_main, z, dz),
        "mlum": _tube(g, p.airways_main, z, dz, radius_scale=0.85),
        "mad": _tube(g, p.airways_main, z, dz, radius_add=3.0),
        "eso": _tube(g, p.esophagus, z, dz),
        "elum": _tube(g, p.esophagus, z, dz, radius_scale=0.35)
        if p.eso_air
        else np.zeros(g.X.shape, _F),
        "esod": _tube(g, p.esophagus, z, dz, radius_add=3.0),
        "vf": _tube(g, p.vessels, z, dz),
        "vbig": _tube(g, p.vessels.subset(p.vessels.r >= 2.6), z, dz, radius_add=1.0),
        "aw": _tube(g, p.airways, z, dz, radius_add=0.5),
        "al": _tube(g, p.airways, z, dz, radius_scale=0.72),
    }


def _static(p: Patient, g: Grid) -> dict[str, np.ndarray]:
    """Per (patient, grid) fields that do not depend on z."""
    key = ("static", p.seed)
    if key not in g.cache:
        th = g.th
        r = np.sqrt(g.X * g.X + g.Y * g.Y) + _F(1e-6)
        c1, s1 = g.X / r, g.Y / r
        # cos/sin(k th) by the angle-addition recurrence (no transcendental per harmonic)
        ck, sk = c1 * c1 - s1 * s1, 2 * s1 * c1
        wob = np.ones_like(th)
        for _k, amp, ph in p.harmonics:
            wob += _F(amp * np.cos(ph)) * ck - _F(amp * np.sin(ph)) * sk
            ck, sk = ck * c1 - sk * s1, sk * c1 + ck * s1
        fat_th = (p.fat * (1 + 0.35 * (2 * c1 * c1 - 1) + 0.15 * s1) + 1.5).astype(_F)
        g.cache.clear()
        g.cache[key] = {
            "wob": wob,
            "fat_th": fat_th,
            "psi": np.abs(np.where(th < -np.pi / 2, th + _F(1.5 * np.pi), th - _F(np.pi / 2))),
        }
    return g.cache[key]


def _torso(p: Patient, g: Grid, z: float, wob: np.ndarray) -> tuple[np.ndarray, float, float]:
    A, Ba = body_axes(p, z)
    A, Ba = float(A), float(Ba)
    xn = g.X / A
    yn = np.where(g.Y < 0, g.Y / Ba, g.Y / p.Bp)
    x2, y2 = xn * xn, yn * yn
    rb = np.where(g.Y < 0, np.sqrt(x2 + y2), np.sqrt(np.sqrt(x2 * x2 + y2 * y2)))
    return rb <= wob, A, Ba


def _arms_breasts(
    p: Patient, g: Grid, z: float, A: float, Ba: float
) -> tuple[np.ndarray | None, list]:
    X, Y, L = g.X, g.Y, p.length
    zf = z / L
    extra = None
    arms = []
    if p.arms_down and zf < 0.8:
        ra = 40 * p.A / 165 * (1 - 0.25 * float(smoothstep(0.3, 0.8, zf)))
        for side in (-1, 1):
            cx = side * (A + ra + p.arm_gap + 6 * zf)
            cy = -0.1 * p.Bp
            arms.append((cx, cy, ra))
            m = ((X - cx) / ra) ** 2 + ((Y - cy) / (ra * 1.1)) ** 2 <= 1
            extra = m if extra is None else extra | m
    elif not p.arms_down and zf < 0.1:
        # arms up: the shoulders (deltoid around the humeral head) widen the top slices
        k = 1 - zf / 0.1
        rs = (30 + 15 * k) * p.A / 165
        for side in (-1, 1):
            cx, cy = side * (A - 0.2 * rs), -0.05 * p.Bp
            arms.append((cx, cy, rs))
            m = ((X - cx) / rs) ** 2 + ((Y - cy) / (rs * 1.05)) ** 2 <= 1
            extra = m if extra is None else extra | m
    if p.breasts is not None:
        prof = 1 - ((z - 0.47 * L) / (0.17 * L)) ** 2
        if prof > 0:
            pr = np.sqrt(prof)
            dx, dy, rx, ry = p.breasts
            for side in (-1, 1):
                m = ((X - side * dx) / (rx * pr)) ** 2 + (
                    (Y + Ba * 0.72 - dy) / (ry * pr)
                ) ** 2 <= 1
                extra = m if extra is None else extra | m
    return extra, arms


def _table(p: Patient, g: Grid, hu: np.ndarray, body: np.ndarray, tex: Tex) -> None:
    X, Y, t = g.X, g.Y, p.table
    out = ~body
    if t["foam"] > 0:
        foam = out & (Y > p.Bp - t["sink"]) & (Y < p.Bp + t["foam"]) & (np.abs(X) < t["width"] / 2)
        hu[foam] = t["foam_hu"] + 25 * tex(1.5)[foam]
        cover = foam & (np.abs(Y - p.Bp - t["foam"]) < 1.2)
        hu[cover] = -300
    dy = Y - (p.Bp + t["foam"] + 3 - t["curve"] * (X / (t["width"] / 2)) ** 2)
    sh, core = t["shell"], t["core"]
    inw = np.abs(X) < t["width"] / 2
    hu[inw & (dy >= sh) & (dy < sh + core)] = -920
    hu[inw & (((dy >= 0) & (dy < sh)) | ((dy >= sh + core) & (dy < 2 * sh + core)))] = t["shell_hu"]
    base = 2 * sh + core
    if t["style"] == 1:
        for side in (-1, 1):
            hu[(np.abs(X - side * t["width"] * 0.38) < 12) & (dy > base) & (dy < base + 25)] = 250
    elif t["style"] == 2:
        hu[inw & (dy > base + 15) & (dy < base + 18)] = 400


def render_base(p: Patient, g: Grid, z: float, tex: Tex, thick: float = 1.0) -> dict:
    """The slowly varying part of a slab of ``thick`` mm, computed once at its centre ``z``: table,
    mattress, blanket, body outline, skin, subcutaneous fat, arms/breasts, body-wall muscle."""
    X, Y, s = g.X, g.Y, g.spacing
    st = _static(p, g)
    hu = np.full(X.shape, -1000.0, _F)
    torso, A, Ba = _torso(p, g, z, st["wob"])
    extra, arms = _arms_breasts(p, g, z, A, Ba)
    body = torso if extra is None else torso | extra
    _table(p, g, hu, body, tex)
    dist_in = np.minimum(cv2.distanceTransform(torso.view(np.uint8), cv2.DIST_L2, 3), _F(1e5)) * _F(
        s
    )
    if p.table["blanket"]:
        dout = np.minimum(
            cv2.distanceTransform((~body).view(np.uint8), cv2.DIST_L2, 3), _F(1e5)
        ) * _F(s)
        gap = p.table["blanket_gap"] * (0.5 + 0.5 * np.sin(g.th * 7 + p.seed % 7)) + 0.5
        bl = (dout > gap) & (dout < gap + 3.0) & (Y < p.Bp * 0.3)
        hu[bl] = -250 + 120 * tex(1.0)[bl]
    fat_th = st["fat_th"]
    hu[body] = -100 + 10 * tex(2.5)[body]
    if extra is not None:
        ex = extra & ~torso
        hu[ex & (tex(2.0, 1) > 0.7)] = 25  # fibroglandular strands / arm muscle
        for cx, cy, ra in arms:
            am = ((X - cx) / (ra - 6)) ** 2 + ((Y - cy) / (ra * 1.1 - 6)) ** 2 <= 1
            hu[am] = 45
    muscle = torso & (dist_in > fat_th)
    hu[muscle] = 42 + 6 * tex(1.5, 2)[muscle]
    plane = muscle & (
        np.abs(dist_in - fat_th - 4 - 3 * tex(6.0, 3)) < 0.9
    )  # fat planes between muscles
    hu[plane] = -70
    skin = body & (
        np.minimum(cv2.distanceTransform(body.view(np.uint8), cv2.DIST_L2, 3), _F(1e5))
        < 1.6 / s + 0.5
    )
    hu[skin] = 25
    # per-plane work happens only in the torso's bounding box (plus a margin)
    rows, cols = np.flatnonzero(torso.any(1)), np.flatnonzero(torso.any(0))
    if len(rows):
        win = (slice(max(0, rows[0] - 2), rows[-1] + 3), slice(max(0, cols[0] - 2), cols[-1] + 3))
    else:
        win = (slice(0, 2), slice(0, 2))
    return {
        "hu": hu,
        "body": body,
        "torso": torso,
        "dist_in": dist_in[win],
        "fat_th": fat_th[win],
        "arms": arms,
        "A": A,
        "thick": float(thick),
        "psi": st["psi"][win],
        "win": win,
        "grid": subgrid(g, win),
    }


def render_plane(
    p: Patient, g: Grid, z: float, tubes: dict[str, np.ndarray], tex: Tex, base: dict | None = None
) -> tuple[np.ndarray, ...]:
    """HU (no blur/noise), lung side map (0/1 right/2 left), lesion occupancy, body mask at ``z``.

    Parameters
    ----------
    p : Patient
        Anatomy.
    g : Grid
        Pixel grid.
    z : float
        Plane position (mm, cranial -> caudal).
    tubes : dict
        Output of ``render_tubes`` for the slab containing ``z``.
    tex : Tex
        Texture fields.
    base : dict, optional
        Output of ``render_base`` for the slab (computed here at ``z`` when None).

    Returns
    -------
    tuple
        (hu float32, lung uint8 {0,1,2}, lesion float32 [0,1], body bool)
    """
    if base is None:
        base = render_base(p, g, z, tex)
    hu_full = base["hu"].copy()
    win, body = base["win"], base["body"]
    g = base["grid"]
    hu = hu_full[win]  # a view: everything below edits hu_full in place
    tex = TexWin(tex, win)  # type: ignore[assignment]
    tubes = {k: v[win] for k, v in tubes.items()}
    X, Y, s, L = g.X, g.Y, g.spacing, p.length
    dist_in, fat_th, arms, A = base["dist_in"], base["fat_th"], base["arms"], base["A"]
    cav = (cavity_field(p, X, Y, z) < 1) & (dist_in > fat_th + 7)
    # --- thoracic content --------------------------------------------------------------------
    if z < min(p.z_dome_r, p.z_dome_l) - 1:  # above both domes: no abdomen in this plane
        thorax, abd = cav, np.zeros_like(cav)
    else:
        thorax = cav & (z < dome_height(p, X, Y))
        abd = cav & ~thorax
    env = apex_envelope(p, X, Y, z)
    sr = float(spine_radius(p, z))
    he = np.full(X.shape, np.inf, _F)
    hwin = None
    if p.heart[5] < z < p.heart[6]:
        hwin = roi(
            g, float(p.heart[0]), float(p.heart[1]), float(max(p.heart[2], p.heart[3])) * 1.3 + 6
        )
        if hwin is not None:
            he[hwin] = heart_field(p, X[hwin], Y[hwin], z)
    med = (np.abs(X) < sr + 6) & (Y > p.spine_y - sr - 10)
    med |= np.abs(X - p.med_x) < 3 + 3 * float(smoothstep(0.1 * L, 0.3 * L, z))
    # mediastinal envelope: sternum-to-spine ellipse, widest (and skewed left) at the arch/PA level
    up = float(smoothstep(0.08 * L, p.z_carina, z))
    down = float(smoothstep(p.heart[5], p.heart[5] + 0.1 * L, z))
    w = p.med_w * (0.45 + 0.55 * up) * (1 - 0.45 * down)
    y_ant = -float(body_axes(p, z)[1]) + p.wall_ant
    yc, h = (p.spine_y + y_ant) / 2, (p.spine_y - y_ant) / 2
    if z > p.z_apex:
        med |= ((X - p.med_x - 9 * up) / w) ** 2 + ((Y - yc) / h) ** 2 < 1
    med |= (
        (he < 1.12)
        | (tubes["vbig"] > 0.5)
        | (tubes["mvd"] > 0.5)
        | (tubes["mad"] > 0.5)
        | (tubes["esod"] > 0.5)
    )
    k = max(3, int(round(16 / s)) | 1)
    med = (
        cv2.morphologyEx(
            med.view(np.uint8),
            cv2.MORPH_CLOSE,
            cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)),
        )
        > 0
    )
    lung = thorax & env & ~med
    fill = cav & ~lung
    hu[fill] = -92 + 12 * tex(1.5, 4)[fill]
    nodes = fill & (tex(2.5, 5) > 2.2)
    hu[nodes] = 35  # lymph nodes / unnamed soft tissue in the mediastinal fat
    if z < p.z_apex + 0.08 * L:  # thoracic inlet / neck: muscles, thyroid, fat
        nk = thorax & ~env & ~(med & (z > p.z_apex))
        tn = tex(3.0, 6)
        hu[nk] = np.where(
            (np.abs(tn[nk]) < 0.06) | (tn[nk] > 2.2), _F(-85), 45 + 5 * tn[nk]
        )  # muscles, fat planes
        tr = p.airways_main
        t = float(np.clip((z - tr.p0[0, 2]) / (tr.p1[0, 2] - tr.p0[0, 2]), 0, 1))
        tx, ty = tr.p0[0, :2] + t * (tr.p1[0, :2] - tr.p0[0, :2])
        if z < 0.1 * L:  # thyroid lobes beside the trachea
            for sd in (-1, 1):
                th_ = (((X - tx - sd * 19) / 9) ** 2 + ((Y - ty + 3) / 14) ** 2 <= 1) & ~med
                hu[th_ & cav] = 130 if p.contrast else 90
    if abd.any():
        abdomen(p, g, z, hu, abd, tex)
    # --- lung parenchyma ---------------------------------------------------------------------
    dep = np.clip((Y + p.Bp * 0.6) / (p.Bp * 1.4), 0, 1) ** 2
    lhu = p.lung_hu + p.lung_grad * dep + 14 * tex(1.0, 7) + 10 * tex(4.0, 8)
    # sub-resolution vessels: sparse bright specks (partial volume of <1 mm vessels)
    # (shared by the sub-planes of a slab, so thin them out by hand for thick slices)
    speck = min(1.0, 1.2 / s) * min(1.0, 2.5 / max(base.get("thick", 1.0), 0.5)) ** 0.5
    lhu += (p.blood_hu * 0.5 + 550) * np.clip(tex(0.5, 14) - 1.8, 0, 0.7) * _F(speck)
    if p.emphysema > 0:
        lhu = np.where(tex(2.0, 9) > 1.7 - 0.9 * p.emphysema, _F(-965), lhu)
    if p.fissures is not None:  # oblique fissures: thin lines, posterior-high to anterior-low
        for side, (zt, zb, bow) in zip((-1, 1), p.fissures, strict=True):
            t = (z - zt) / (zb - zt)
            if 0 < t < 1:
                yf = (
                    p.Bp * 0.6
                    - t * (p.Bp * 0.6 + p.Ba * 0.8)
                    + bow * np.sin(np.clip((np.abs(X) - 20) / 120, 0, 1) * np.pi)
                )
                dd = np.abs(Y - yf - 0.25 * (np.abs(X) - 60)) / _F(max(s, 0.5))
                fis = (dd < 1.0) & ((X * side) > 0)
                lhu = np.where(fis, lhu + (1.0 - dd) * _F(min(1.0, 0.8 / s) * 250), lhu)
    hu[lung] = lhu[lung]
    for blob, phu in p.patches:
        f = blob_fraction(g, blob, z, edge_mm=6.0)
        if f is not None:
            f *= lung
            hu += f * (phu + 30 * tex(1.5, 10) - hu)
    if (
        p.effusion is not None
    ):  # dependent fluid (NOT lung), meniscus rising laterally; mostly basal
        side, depth = p.effusion
        depth = depth * float(0.15 + 0.85 * smoothstep(p.z_carina, p.z_dome_r, z))
        yl = (
            p.spine_y + 16 - depth + 2.2 * depth * (X / max(A, 1)) ** 2
        )  # meniscus climbs laterally
        sidem = (X * side) > 0
        eff = thorax & sidem & (Y > yl) & ~med
        atel = lung & sidem & (Y > yl - 5) & ~eff
        hu[atel] = -200 + 80 * tex(1.0, 11)[atel]
        hu[eff] = 12 + 5 * tex(2.0, 12)[eff]
        lung &= ~eff
    vf = tubes["vf"] * (lung | (tubes["vbig"] > 0.5))  # hilar trunks are drawn but are not lung
    hu += vf * (_F(42.0 + (p.blood_hu - 42.0) * 0.6 if p.contrast else 42.0) - hu)
    aw = tubes["aw"] * lung
    hu += aw * (_F(10) - hu)
    al = tubes["al"] * lung
    hu += al * (_F(-980) - hu)
    # --- mediastinal organs ------------------------------------------------------------------
    heart = he < 1
    if hwin is not None and heart.any():
        heart_detail(p, subgrid(g, hwin), z, hu[hwin], heart[hwin], TexWin(tex, hwin))  # type: ignore[arg-type]
    hu += tubes["eso"] * (_F(38) - hu)
    hu += tubes["elum"] * (_F(-990) - hu)
    hu += tubes["mv"] * (_F(p.blood_hu) - hu)
    hu += tubes["mair"] * (_F(30) - hu)
    hu += tubes["mlum"] * (_F(-995) - hu)
    lung &= ~((tubes["mv"] > 0.5) | (tubes["mair"] > 0.3) | heart)
    bones(p, g, z, hu, dist_in, fat_th, cav, base["psi"], arms, tex)
    # --- lesions: drawn wherever they reach in the thoracic cavity, LABELLED only inside the lung:
    # the part of a central mass that invades the mediastinum has the HU of the mediastinum (no
    # visible edge); labelling it taught the model to call heart and liver tissue 'lesion'
    les = np.zeros(X.shape, _F)
    for lesion in p.lesions:
        if lesion.spicules is not None:
            sp = _tube(g, lesion.spicules, z, 1.0) * lung
            hu += sp * (_F(lesion.hu) - hu)
        f = blob_fraction(g, lesion.blob, z)
        if f is None:
            continue
        f *= thorax
        tx = lesion.hu + 15 * tex(1.0, 13)
        hu += f * (tx - hu) * (_F(0.85) if lesion.kind != "solid" else _F(1.0))
        if lesion.core is not None:
            fc = blob_fraction(g, lesion.core, z)
            if fc is not None:
                hu += fc * f * (_F(30) - hu)
        np.maximum(les, f * lung, out=les)
    lside = np.zeros(hu_full.shape, np.uint8)
    lside[win] = np.where(lung, np.where(X < 0, 1, 2), 0)
    les_full = np.zeros(hu_full.shape, _F)
    les_full[win] = les
    return hu_full, lside, les_full, body
