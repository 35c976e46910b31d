"""Synthetic chest CT phantom: determinism, labels, HU per tissue, anatomy, 3D coherence."""

from __future__ import annotations

import numpy as np
import pytest

from inference.phantom import PhantomConfig, generate_dataset, generate_slice, generate_volume

MID = [0.35, 0.45, 0.55]
CLEAN = PhantomConfig(patch_rate=0.0, effusion_prob=0.0, emphysema_prob=0.0)


def _slice(seed: int, **kw):
    return generate_slice(np.random.default_rng(seed), **kw)


class TestGenerateSlice:
    def test_deterministic_for_same_seed(self) -> None:
        a = _slice(7, z_frac=0.5)
        b = _slice(7, z_frac=0.5)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
        c = _slice(8, z_frac=0.5)
        assert not np.array_equal(a[0], c[0])

    def test_types_shapes_and_label_set(self) -> None:
        hu, lab, sp = _slice(1, size=128, spacing_mm=3.0, z_frac=0.45)
        assert hu.shape == lab.shape == (128, 128)
        assert hu.dtype == np.float32 and lab.dtype == np.uint8
        assert sp == 3.0
        assert set(np.unique(lab)) <= {0, 1, 2, 3}
        assert hu.min() >= -1024 and hu.max() <= 3071

    @pytest.mark.parametrize("seed", [0, 1, 2, 3])
    def test_hu_per_tissue(self, seed: int) -> None:
        hu, lab, sp = _slice(seed, z_frac=MID[seed % 3], lesions=0, config=CLEAN)
        lung = (lab == 1) | (lab == 2)
        assert lung.sum() > 2000, "a mid-chest slice must contain lung"
        assert -900 <= float(hu[lung].mean()) <= -700
        # air outside the body: the image corners (top row is anterior air, never table)
        corner = hu[:6, :6]
        assert -1030 <= float(np.median(corner)) <= -950
        # soft tissue exists: some pixels in the fat range and some in the muscle/blood range
        body = (hu > -200) & (hu < 200)
        assert body.sum() > 3000
        assert ((hu > -130) & (hu < -60)).sum() > 300  # fat
        assert ((hu > 20) & (hu < 80)).sum() > 300  # muscle / non-contrast soft tissue
        assert (hu > 500).sum() > 20  # bone

    @pytest.mark.parametrize("seed", [10, 11, 12])
    def test_right_lung_is_on_image_left(self, seed: int) -> None:
        _, lab, _ = _slice(seed, z_frac=0.5, lesions=0)
        cols = np.arange(lab.shape[1])[None, :]
        mean_r = float((cols * (lab == 1)).sum() / max((lab == 1).sum(), 1))
        mean_l = float((cols * (lab == 2)).sum() / max((lab == 2).sum(), 1))
        assert (lab == 1).sum() > 500 and (lab == 2).sum() > 500
        assert mean_r < lab.shape[1] / 2 < mean_l

    def test_trachea_air_is_not_lung(self) -> None:
        # above the carina the trachea is an air-filled ring near the midline: label 0
        for seed in range(3):
            hu, lab, sp = _slice(seed, z_frac=0.25, size=256, spacing_mm=1.4, lesions=0)
            h, w = hu.shape
            c = slice(w // 2 - 25, w // 2 + 25)
            mid = np.zeros_like(lab, bool)
            mid[h // 4 : 3 * h // 4, c] = True
            air = mid & (hu < -900) & (lab == 0)
            assert air.sum() > 15, f"seed {seed}: no non-lung air (trachea) near the midline"

    def test_gut_gas_and_effusion_are_not_lung(self) -> None:
        from scipy import ndimage as ndi

        cfg = PhantomConfig(effusion_prob=1.0, lesion_prob=0.0)
        gas = fluid = 0
        for seed in range(4):
            hu, lab, _, info = _slice(seed, z_frac=0.9, config=cfg, return_info=True)
            body = ndi.binary_fill_holes(hu > -400)
            gas += int(((hu < -900) & (lab == 0) & body).sum())
            # the effusion side's lung never contains fluid-density pixels away from its edge
            side = 1 if info["effusion"][0] < 0 else 2
            inner = ndi.binary_erosion(lab == side, iterations=3)
            fluid += int(((hu > -50) & (hu < 40) & inner).sum())
        assert gas > 100, "stomach/colon gas below the domes must exist and be label 0"
        assert fluid < 50

    def test_lung_free_slices_at_abdomen(self) -> None:
        for seed in range(4):
            hu, lab, _ = _slice(seed, z_frac=1.0, lesions=0)
            assert ((lab == 1) | (lab == 2)).sum() < 0.002 * lab.size
            assert (hu > 0).sum() > 2000  # liver/spleen/muscle present

    def test_lesions_are_labelled_and_denser_than_lung(self) -> None:
        found = 0
        for seed in range(6):
            hu, lab, _ = _slice(seed, z_frac=0.5, lesions=2)
            les = lab == 3
            lung = (lab == 1) | (lab == 2)
            if les.sum() < 5:
                continue
            found += 1
            assert float(hu[les].mean()) > float(hu[lung].mean()) + 60
        assert found >= 4

    def test_dataset_is_stacked_and_deterministic(self) -> None:
        a = generate_dataset(3, 3, size=96)
        b = generate_dataset(3, 3, size=96)
        assert a[0].shape == (3, 96, 96) and a[1].shape == (3, 96, 96) and a[2].shape == (3,)
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
        assert not np.array_equal(a[0][0], a[0][1])

    def test_context_slices_for_2_5d(self) -> None:
        hu, lab, sp = _slice(4, size=96, z_frac=0.5, context=1, context_gap_mm=5.0)
        assert hu.shape == (3, 96, 96) and lab.shape == (96, 96)
        lung = (lab == 1) | (lab == 2)
        # neighbours 5 mm away are similar to the middle slice, but not identical
        for k in (0, 2):
            assert float(np.median(hu[k][lung])) < -600
            assert not np.array_equal(hu[k], hu[1])
        assert np.corrcoef(hu[0].ravel(), hu[1].ravel())[0, 1] > 0.8

    def test_hilar_masses_are_large_central_and_labelled(self) -> None:
        cfg = PhantomConfig(lesion_prob=1.0, max_lesions=1, hilar_prob=1.0)
        central = 0
        for seed in range(8):
            hu, lab, sp, info = generate_slice(
                np.random.default_rng([11, seed]), size=192, z_frac=0.45, config=cfg, return_info=True
            )
            les = info["lesions"]
            assert len(les) <= 1
            if not les:  # allowed: the centre would not have been in lung
                continue
            d, (x, y, _) = les[0]["diameter_mm"], les[0]["centre_mm"]
            assert 25.0 <= d <= 75.0 and les[0]["kind"] in ("solid", "part_solid")
            # centred beside the mediastinum (hila are 38-50 mm from the midline), not in the periphery
            assert abs(x) < 50 + 0.8 * d / 2 + 1
            m = lab == 3
            if m.sum() * sp * sp > 150:  # a real cut through the mass: soft tissue, touching lung
                central += 1
                assert float(np.median(hu[m])) > (-300 if les[0]["kind"] == "solid" else -700)
                grown = np.zeros_like(m)
                grown[1:-1, 1:-1] = m[1:-1, 1:-1] | m[:-2, 1:-1] | m[2:, 1:-1] | m[1:-1, :-2] | m[1:-1, 2:]
                assert ((lab == 1) | (lab == 2))[grown].any()
        assert central >= 4

    def test_no_hilar_masses_away_from_the_hila_or_when_off(self) -> None:
        for cfg, zf in ((PhantomConfig(lesion_prob=1.0, max_lesions=1, hilar_prob=1.0), 0.2),
                        (PhantomConfig(lesion_prob=1.0, max_lesions=1, hilar_prob=0.0), 0.45)):
            diams = [les["diameter_mm"] for seed in range(8) for les in generate_slice(
                np.random.default_rng([12, seed]), size=128, z_frac=zf, config=cfg, return_info=True)[3]["lesions"]]
            # regular lesions are log-uniform 3-60 mm: mostly small
            assert sum(d < 25 for d in diams) >= len(diams) // 2

    def test_breathing_motion_smears_the_bases_only(self) -> None:
        still = PhantomConfig(motion_prob=0.0, lesion_prob=0.0)
        moving = PhantomConfig(motion_prob=1.0, motion_mm=(10.0, 12.0), lesion_prob=0.0)
        a = generate_slice(np.random.default_rng([13, 0]), size=128, z_frac=0.8, config=still)
        b = generate_slice(np.random.default_rng([13, 0]), size=128, z_frac=0.8, config=moving)
        assert not np.array_equal(a[0], b[0])  # the slab is 10-12 mm thicker
        lung_a, lung_b = np.isin(a[1], (1, 2)), np.isin(b[1], (1, 2))
        assert lung_a.any() and lung_b.any()
        # smearing mixes dome and lung: more pixels at intermediate (partial volume) HU
        mid = lambda hu: int(((hu > -700) & (hu < -200)).sum())  # noqa: E731
        assert mid(b[0]) > mid(a[0])
        # above the bases nothing changes: no random draw when the slice is not basal
        c = generate_slice(np.random.default_rng([13, 1]), size=96, z_frac=0.4, config=still)
        d = generate_slice(np.random.default_rng([13, 1]), size=96, z_frac=0.4, config=moving)
        assert np.array_equal(c[0], d[0]) and np.array_equal(c[1], d[1])

    def test_posterior_recess_thickens_the_basal_crescents_behind_the_dome(self) -> None:
        from inference.phantom_grid import make_grid
        from inference.phantom_patient import sample_patient
        from inference.phantom import _render_slab
        from inference.phantom_shapes import dome_height

        p = sample_patient(np.random.default_rng(23), length=330.0, tree_points=300,
                           posterior_recess=1.5)
        assert p.post_recess > 0
        g = make_grid(128, 3.0, (0.0, 0.0), 0.0)
        deep = dome_height(p, g.X, g.Y)
        extra, p.post_recess = p.post_recess, 0.0
        flat = dome_height(p, g.X, g.Y)
        # only the diaphragm behind the dome tops is lowered, nowhere raised
        front = g.Y <= p.dome_cy
        assert np.array_equal(deep[front], flat[front])
        assert (deep >= flat).all() and (deep > flat + 1.0).any()
        z = p.z_dome_r + 45.0  # 45 mm below the right dome top
        lung = lambda: int(np.isin(_render_slab(p, g, z, 2.0, 1, np.random.default_rng(0))[1], (1, 2)).sum())  # noqa: E731
        thin = lung()
        p.post_recess = extra
        assert lung() > 2 * thin  # a thick posterior crescent, not a thin rim
        # off by default: no random draw, the default generator is unchanged
        assert sample_patient(np.random.default_rng(23), length=330.0, tree_points=300).post_recess == 0.0

    def test_config_controls_lesions(self) -> None:
        cfg = PhantomConfig(lesion_prob=0.0)
        for seed in range(3):
            _, lab, _ = _slice(seed, z_frac=0.5, config=cfg)
            assert not (lab == 3).any()


class TestGenerateVolume:
    @pytest.fixture(scope="class")
    def vol(self):
        return generate_volume(
            np.random.default_rng(5),
            shape=(24, 128, 128),
            spacing=(12.0, 3.0, 3.0),
            z_range=(0.0, 1.0),
            lesions=2,
        )

    def test_shapes_and_info(self, vol) -> None:
        hu, lab, info = vol
        assert hu.shape == lab.shape == (24, 128, 128)
        assert hu.dtype == np.float32 and lab.dtype == np.uint8
        assert len(info["z_frac"]) == 24 and info["z_frac"][0] < info["z_frac"][-1]
        assert len(info["lesions"]) == 2
        for les in info["lesions"]:
            z, y, x = les["centre_zyx"]
            assert 0 <= z < 24 and 0 <= y < 128 and 0 <= x < 128
            assert 3 <= les["diameter_mm"] <= 60

    def test_lungs_appear_and_vanish_smoothly(self, vol) -> None:
        _, lab, _ = vol
        area = ((lab == 1) | (lab == 2)).sum(axis=(1, 2)).astype(float)
        assert area[0] < 0.3 * area.max() and area[-1] < 0.05 * area.max()
        assert area.max() > 800  # px of 3 mm: > 72 cm^2 of lung on the largest slice
        # no slice-to-slice jump above 60 % of the maximum area (12 mm slices: the bases drop fast)
        assert np.abs(np.diff(area)).max() < 0.6 * area.max()
        # neighbouring slices overlap: same patient, same place
        lung = (lab == 1) | (lab == 2)
        for k in range(len(area) - 1):
            if min(area[k], area[k + 1]) > 0.5 * area.max():
                dice = 2 * (lung[k] & lung[k + 1]).sum() / (area[k] + area[k + 1])
                assert dice > 0.7, f"slices {k},{k + 1}: Dice {dice:.2f}"
        # both lungs everywhere the lungs are large
        big = area > 0.5 * area.max()
        assert ((lab[big] == 1).sum() > 0) and ((lab[big] == 2).sum() > 0)

    def test_lesion_info_points_at_label_3(self) -> None:
        hu, lab, info = generate_volume(
            np.random.default_rng(4), shape=(40, 256, 256), spacing=(5.0, 1.4, 1.4), lesions=4
        )
        assert len(info["lesions"]) == 4
        checked = 0
        for les in info["lesions"]:
            if les["diameter_mm"] < 8:  # smaller ones may fall below half occupancy of a 5 mm slice
                continue
            checked += 1
            z, y, x = (int(round(v)) for v in les["centre_zyx"])
            win = lab[max(z - 1, 0) : z + 2, max(y - 3, 0) : y + 4, max(x - 3, 0) : x + 4]
            assert (win == 3).any(), f"no lesion label at {les}"
            if les["kind"] == "solid":
                assert hu[z, y, x] > -300
        assert checked >= 2
        # a lesion spans several 5 mm slices when it is large
        big = [les for les in info["lesions"] if les["diameter_mm"] > 20]
        for les in big:
            z = int(round(les["centre_zyx"][0]))
            assert sum((lab[k] == 3).any() for k in range(max(z - 2, 0), min(z + 3, 40))) >= 3

    def test_volume_progress_and_cancel(self) -> None:
        from inference.jobs import Cancelled

        seen = []
        kw = dict(shape=(3, 48, 48), spacing=(10.0, 6.0, 6.0), lesions=0)
        generate_volume(
            np.random.default_rng(0), progress=lambda d, t, m: seen.append((d, t)), **kw
        )
        assert seen[0] == (0, 3) and seen[-1] == (3, 3)
        calls = []

        def cancel() -> bool:
            calls.append(1)
            return len(calls) > 1

        with pytest.raises(Cancelled):
            generate_volume(np.random.default_rng(0), cancel=cancel, **kw)

    def test_volume_deterministic(self) -> None:
        kw = dict(shape=(4, 64, 64), spacing=(10.0, 5.0, 5.0), lesions=1)
        a = generate_volume(np.random.default_rng(2), **kw)
        b = generate_volume(np.random.default_rng(2), **kw)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
