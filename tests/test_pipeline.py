"""segment_volume with predictors whose answer is known: resampling, padding, stitching,
orientation.

The "band" model is a real ONNX file (tests/test_engines.py) whose argmax is the label whose
centre (0, 0.5, 1 in normalised units) is nearest to the input value, so the expected label map
follows from the HU alone; orientation is checked with a position-sensitive predictor.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from inference.domain import DomainError
from inference.jobs import Cancelled, CancelToken
from inference.package import PackageError, load_package
from inference.pipeline import segment_volume, threshold_labels
from inference.preprocess_input import (
    ArrayVolume,
    model_input_for_slice,
    normalize_hu,
    orientation_of,
)
from tests.test_engines import band_package, build_slow_onnx, write_package

CHEST = SimpleNamespace(modality="CT", body_part="CHEST")
LEVELS = np.array([-1050, -600, 100], np.int16)  # normalised 0.2, 0.5, 0.97 → labels 0, 1, 2


def expected_band(hu: np.ndarray) -> np.ndarray:
    """Label nearest to the normalised value (window -600/1500, centres 0, 0.5, 1)."""
    x = np.clip((hu.astype(np.float64) + 1350) / 1500, 0, 1)
    return np.argmin(np.abs(x[..., None] - np.array([0.0, 0.5, 1.0])), axis=-1).astype(np.uint8)


@pytest.fixture(scope="module")
def band(tmp_path_factory: pytest.TempPathFactory):
    return load_package(band_package(tmp_path_factory.mktemp("band") / "band"))


def _vol(vox: np.ndarray, spacing=(2.0, 1.0, 1.0), direction=None, meta=CHEST) -> ArrayVolume:
    return ArrayVolume(vox, spacing, np.eye(3) if direction is None else direction, meta)


class TestExactStitching:
    def test_no_resampling_odd_size_is_exact(self, band) -> None:
        rng = np.random.default_rng(0)
        vox = LEVELS[rng.integers(0, 3, (5, 300, 277))]  # 300 mm FOV, not divisible by 16
        res = segment_volume(_vol(vox), band, batch_size=2)
        np.testing.assert_array_equal(res.labels, expected_band(vox))
        assert res.labels.shape == vox.shape and res.labels.dtype == np.uint8
        assert res.probabilities.shape == (3, *vox.shape)
        s = res.probabilities.astype(int).sum(axis=0)
        assert s.min() >= 253 and s.max() <= 257  # uint8-quantised, sums to 1
        assert res.geometry["slice"]["input_shape"] == [304, 288]

    def test_progress_per_batch(self, band) -> None:
        calls = []
        vox = np.full((5, 256, 256), -600, np.int16)
        segment_volume(
            _vol(vox), band, batch_size=2, progress=lambda d, t, m: calls.append((d, t, m))
        )
        assert calls == [
            (0, 5, "starting the engine"),
            (2, 5, "slice 2/5"),
            (4, 5, "slice 4/5"),
            (5, 5, "slice 5/5"),
            (5, 5, "post-processing"),
        ]

    def test_threshold_labels(self, band) -> None:
        vox = np.full((1, 256, 256), -600, np.int16)
        vox[0, :, 128:] = -975  # halfway between centres 0 and 0.5: p(label 1) ≈ p(label 0)
        res = segment_volume(_vol(vox), band)
        lab = threshold_labels(res.probabilities, 0.2)
        assert (lab[0, :, :128] == 1).all()
        strict = threshold_labels(res.probabilities, 0.99)
        assert (strict[0, :, 128:] == 0).all()


class TestResampling:
    def test_exact_factor_two(self, band) -> None:
        # 0.5 mm pixels, model at 1.0 mm: INTER_AREA halves, bilinear doubles back
        rng = np.random.default_rng(1)
        blocks = LEVELS[rng.integers(0, 3, (3, 64, 64))]
        vox = np.repeat(np.repeat(blocks, 8, axis=1), 8, axis=2)  # 512², 8-pixel blocks
        res = segment_volume(_vol(vox, (2.0, 0.5, 0.5)), band)
        assert res.geometry["slice"]["resized"] == [256, 256]
        truth = expected_band(vox)
        # every pixel whose 3x3 neighbourhood is uniform in the truth comes back exactly
        from scipy import ndimage

        uniform = ndimage.maximum_filter(truth, size=(1, 3, 3)) == ndimage.minimum_filter(
            truth, size=(1, 3, 3)
        )
        np.testing.assert_array_equal(res.labels[uniform], truth[uniform])
        assert uniform.mean() > 0.5  # the exact check covers most of the image

    def test_non_integer_ratio_and_anisotropic(self, band) -> None:
        yy, xx = np.mgrid[:400, :360]
        disc = ((yy - 200) / 150.0) ** 2 + ((xx - 180) / 100.0) ** 2 < 1
        vox = np.where(disc, -600, -1050).astype(np.int16)[None].repeat(2, 0)
        res = segment_volume(_vol(vox, (5.0, 0.7, 0.9)), band)
        truth = expected_band(vox)
        inter = ((res.labels == 1) & (truth == 1)).sum()
        dice = 2 * inter / ((res.labels == 1).sum() + (truth == 1).sum())
        assert dice > 0.99
        assert res.geometry["slice"]["resized"] == [280, 324]  # round(400*0.7), round(360*0.9)

    def test_size_policy(self, tmp_path: Path) -> None:
        pkg = load_package(
            band_package(
                tmp_path / "s", input_spec={"inplane": {"policy": "size", "size": [128, 96]}}
            )
        )
        vox = np.full((2, 320, 320), -600, np.int16)
        vox[:, :160] = 100
        res = segment_volume(_vol(vox), pkg)
        assert res.geometry["slice"]["input_shape"] == [128, 96]
        np.testing.assert_array_equal(res.labels, expected_band(vox))


# ------------------------------------------------------------------------------- orientation
def _direction(row, col, normal) -> np.ndarray:
    return np.array([row, col, normal], float).T


POSITIONS = {  # (IOP row, IOP col, slice step) as a loader builds them (z sorted along the normal)
    "HFS": ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
    "FFS": ((-1, 0, 0), (0, 1, 0), (0, 0, -1)),
    "HFP": ((-1, 0, 0), (0, -1, 0), (0, 0, 1)),
    "FFP": ((1, 0, 0), (0, -1, 0), (0, 0, -1)),
    "HFS-transposed": ((0, 1, 0), (1, 0, 0), (0, 0, -1)),
    "HFS-reversed-z": ((1, 0, 0), (0, 1, 0), (0, 0, -1)),
}


def _phantom(
    direction: np.ndarray, shape=(6, 64, 80), spacing=1.0
) -> tuple[ArrayVolume, np.ndarray]:
    """Sample a physical phantom on the grid of ``direction``: returns the volume and LPS of
    each voxel."""
    nz, ny, nx = shape
    z, y, x = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    idx = np.stack([x - (nx - 1) / 2, y - (ny - 1) / 2, z - (nz - 1) / 2], axis=-1) * spacing
    lps = idx @ direction.T  # [z, y, x, 3]
    body = (lps[..., 0] / 36) ** 2 + (lps[..., 1] / 28) ** 2 < 1
    # patient's right (L < 0) has 100 HU tissue, left lung-like -600: a physical asymmetry
    hu = np.where(body, np.where(lps[..., 0] < 0, 100, -600), -1050).astype(np.int16)
    return _vol(hu, (spacing, spacing, spacing), direction), lps


def side_engine(x: np.ndarray) -> np.ndarray:
    """Position-sensitive predictor: in the body, image-left half → label 1, image-right →
    label 2."""
    n, _, h, w = x.shape
    body = x[:, 0] > 0.25
    logits = np.zeros((n, 3, h, w), np.float32)
    logits[:, 0] = ~body
    logits[:, 1] = body & (np.arange(w) < w // 2)[None, None, :]
    logits[:, 2] = body & (np.arange(w) >= w // 2)[None, None, :]
    return logits * 10


class TestOrientation:
    @pytest.mark.parametrize("position", list(POSITIONS))
    def test_right_label_on_patient_right(self, band, position: str) -> None:
        vol, lps = _phantom(_direction(*POSITIONS[position]))
        res = segment_volume(
            vol, band, engine=side_engine, force_domain=True
        )  # small FOV: fast test
        assert (res.labels == 1).sum() > 1000
        assert (lps[res.labels == 1][:, 0] < 0).all(), (
            "label 1 must be on the patient's right (LPS x < 0)"
        )
        assert (lps[res.labels == 2][:, 0] > 0).all()

    @pytest.mark.parametrize("position", list(POSITIONS))
    def test_round_trip_exact(self, band, position: str) -> None:
        vol, _ = _phantom(_direction(*POSITIONS[position]), shape=(5, 48, 70))
        res = segment_volume(vol, band, force_domain=True)
        np.testing.assert_array_equal(res.labels, expected_band(vol.voxels))
        # the probabilities went through the same reorientation
        np.testing.assert_array_equal(np.argmax(res.probabilities, axis=0), res.labels)

    def test_sagittal_stack_resliced_with_warning(self, band) -> None:
        vol, lps = _phantom(_direction((0, 1, 0), (0, 0, -1), (-1, 0, 0)), shape=(80, 6, 64))
        with pytest.raises(DomainError, match="slices are sagittal"):
            segment_volume(vol, band)
        res = segment_volume(vol, band, force_domain=True, engine=side_engine)
        assert any("sagittal" in w for w in res.domain_warnings)
        assert (lps[res.labels == 1][:, 0] < 0).all() and (res.labels == 1).any()
        exact = segment_volume(vol, band, force_domain=True)
        np.testing.assert_array_equal(exact.labels, expected_band(vol.voxels))

    def test_orientation_of(self) -> None:
        o = orientation_of(_direction(*POSITIONS["FFS"]))
        assert o.perm == (0, 1, 2) and o.flip == (False, False, True) and o.plane == "axial"
        h = orientation_of(_direction(*POSITIONS["HFS"]))  # loaded HFS: slice 0 is the most caudal
        assert h.perm == (0, 1, 2) and h.flip == (True, False, False)
        t = orientation_of(_direction(*POSITIONS["HFS-transposed"]))
        assert t.perm == (0, 2, 1) and t.flip == (False, False, False)
        a = np.radians(20)
        tilted = orientation_of(
            _direction((1, 0, 0), (0, np.cos(a), np.sin(a)), (0, np.sin(a), -np.cos(a)))
        )
        assert tilted.is_identity and abs(tilted.max_angle_deg - 20) < 1e-6


class TestModelInput:
    def test_replay_matches_what_the_engine_saw(self, band) -> None:
        vol, _ = _phantom(_direction(*POSITIONS["HFP"]), shape=(6, 50, 70))
        seen = {}

        def spy(x: np.ndarray) -> np.ndarray:
            seen.setdefault("batches", []).append(x.copy())
            return side_engine(x)

        segment_volume(vol, band, engine=spy, batch_size=1, force_domain=True)
        # HFP: slices run toward the head, canonical head → feet: original slice 1 is canonical 4
        x, info = model_input_for_slice(vol, 1, band)
        assert info["canonical_z"] == 4 and info["geometry"]["input_shape"] == [64, 80]
        np.testing.assert_array_equal(x, seen["batches"][4][0])
        assert x[0, 0, 0] == pytest.approx(float(normalize_hu(np.float32(-1024), band.input)))

    def test_two_point_five_d_channels(self, tmp_path: Path) -> None:
        pkg = load_package(band_package(tmp_path / "c3", input_spec={"channels": 3}))
        vox = (np.arange(4)[:, None, None] * 300 - 1050 + np.zeros((4, 256, 256))).astype(np.int16)
        feet_first = np.diag([1.0, 1.0, -1.0])  # slice 0 most cranial, like the training phantoms
        x, _ = model_input_for_slice(_vol(vox, direction=feet_first), 0, pkg)
        assert x.shape == (3, 256, 256)
        norm = [
            float(normalize_hu(np.float32(v), pkg.input)) for v in (-1050, -1050, -750)
        ]  # clamped z-1
        x_hfs, info = model_input_for_slice(
            _vol(vox), 0, pkg
        )  # loaded HFS: slice 0 is the most caudal
        assert info["canonical_z"] == 3
        assert [float(x_hfs[c, 5, 5]) for c in range(3)] == pytest.approx(norm[::-1])
        assert [float(x[c, 5, 5]) for c in range(3)] == pytest.approx(norm)
        res = segment_volume(_vol(vox), pkg)  # band model reads the centre channel
        np.testing.assert_array_equal(res.labels, expected_band(vox))


class TestCancelAndErrors:
    def test_cancel_between_batches_within_one_second(self, band) -> None:
        token = CancelToken()

        def slow(x: np.ndarray) -> np.ndarray:
            time.sleep(0.3)
            return side_engine(x)

        threading.Timer(0.5, token.cancel).start()
        t0 = time.perf_counter()
        with pytest.raises(Cancelled):
            segment_volume(
                _vol(np.full((40, 256, 256), -600, np.int16)), band, engine=slow, cancel=token
            )
        assert time.perf_counter() - t0 < 1.5

    def test_cancel_interrupts_blocking_onnx_run(self, tmp_path: Path) -> None:
        root = tmp_path / "slow"
        root.mkdir()
        pkg = load_package(write_package(root, {"onnx": build_slow_onnx(root / "model.onnx")}))
        vox = np.full((4, 384, 384), -600, np.int16)
        token = CancelToken()
        out: dict[str, float] = {}

        def job() -> None:
            try:
                segment_volume(_vol(vox), pkg, threads=1, batch_size=4, cancel=token)
                out["how"] = "finished"
            except Cancelled:
                out["how"] = "cancelled"
            out["t"] = time.perf_counter()

        th = threading.Thread(target=job)
        th.start()
        time.sleep(1.0)  # session created, inside session.run (4 x 384² through 300 convs: seconds)
        t_cancel = time.perf_counter()
        token.cancel()
        th.join(15)
        assert out["how"] == "cancelled"
        assert out["t"] - t_cancel < 1.0

    def test_wrong_output_shape(self, band) -> None:
        with pytest.raises(PackageError, match="expected .*K = 3 labels"):
            segment_volume(_vol(np.full((1, 256, 256), -1000, np.int16)), band, engine=lambda x: x)

    def test_rgb_refused(self, band) -> None:
        with pytest.raises(PackageError, match=r"\[z, y, x\] volume"):
            segment_volume(_vol(np.zeros((1, 8, 8, 3), np.uint8)), band)
