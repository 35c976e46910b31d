"""Preprocessing filters: equal to direct OpenCV calls, correct on 16-bit input, GUI-ready specs."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from viewer import preprocess as P


@pytest.fixture
def ct_slice() -> np.ndarray:
    """int16 HU slice: air, body disc, lung, bright bone, noise, values far outside any window."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:128, :128]
    hu = np.full((128, 128), -1000, np.int16)
    hu[(yy - 64) ** 2 + (xx - 64) ** 2 < 55**2] = 40
    hu[(yy - 60) ** 2 + (xx - 40) ** 2 < 15**2] = -850
    hu[100:110, 60:70] = 3000
    hu[5:8, 5:8] = -3024
    return (hu + rng.normal(0, 10, hu.shape)).astype(np.int16)


class TestWindowing:
    def test_clips_outside_values_instead_of_wrapping(self):
        hu = np.array([[-3024, -1000, -160, 40, 240, 1000, 3071, 32767, -32768]], np.int16)
        u = P.windowed_uint8(hu, 40, 400)
        assert u.dtype == np.uint8
        assert u.tolist() == [[0, 0, 0, 128, 255, 255, 255, 255, 0]]  # 40 HU → 127.5 → 128

    def test_uint16_and_float_input(self):
        stored = np.array([[0, 1000, 2000, 65535]], np.uint16)
        assert P.windowed_uint8(stored, 1000, 2000).tolist() == [[0, 128, 255, 255]]
        assert P.windowed_uint8(stored.astype(np.float32), 1000, 2000).tolist() == [
            [0, 128, 255, 255]
        ]

    def test_linear_inside_window_matches_formula(self, ct_slice):
        c, w = -600.0, 1500.0
        expect = np.clip(np.rint((ct_slice.astype(np.float64) - (c - w / 2)) * 255.0 / w), 0, 255)
        assert np.abs(P.windowed_uint8(ct_slice, c, w).astype(int) - expect).max() <= 1

    def test_invert_monochrome1(self, ct_slice):
        assert np.array_equal(
            P.windowed_uint8(ct_slice, 40, 400, invert=True),
            255 - P.windowed_uint8(ct_slice, 40, 400),
        )

    def test_bad_width(self, ct_slice):
        with pytest.raises(ValueError, match="width must be > 0"):
            P.windowed_uint8(ct_slice, 40, 0)


class TestFiltersEqualOpenCV:
    @pytest.fixture
    def img(self, ct_slice):
        return P.windowed_uint8(ct_slice, 40, 400)

    def test_clahe(self, img):
        ref = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(4, 4)).apply(img)
        assert np.array_equal(P.clahe(img, clip_limit=3.0, tile_grid=4), ref)

    def test_equalize(self, img):
        assert np.array_equal(P.equalize(img), cv2.equalizeHist(img))

    def test_canny_with_blur(self, img):
        ref = cv2.Canny(cv2.GaussianBlur(img, (0, 0), 1.5), 30, 90, L2gradient=True)
        out = P.canny(img, low=30, high=90, blur_sigma=1.5)
        assert np.array_equal(out, ref) and set(np.unique(out)) <= {0, 255} and out.any()
        assert np.array_equal(
            P.canny(img, low=30, high=90, blur_sigma=0), cv2.Canny(img, 30, 90, L2gradient=True)
        )

    @pytest.mark.parametrize("ksize", [3, 5, 7])
    def test_sobel_magnitude(self, img, ksize):
        gx = cv2.Sobel(img, cv2.CV_64F, 1, 0, ksize=ksize)
        gy = cv2.Sobel(img, cv2.CV_64F, 0, 1, ksize=ksize)
        gain = {3: 4.0, 5: 48.0, 7: 640.0}[ksize]
        ref = np.clip(np.rint(np.hypot(gx, gy) / gain), 0, 255)
        assert np.abs(P.sobel(img, ksize=ksize).astype(int) - ref).max() <= 1

    def test_sobel_step_height(self):
        step = np.zeros((32, 32), np.uint8)
        step[:, 16:] = 100  # a 100-grey-level step reads ≈ 100 whatever the aperture
        for k in (3, 5, 7):
            assert P.sobel(step, ksize=k).max() == pytest.approx(100, abs=2)

    def test_denoise(self, img):
        assert np.array_equal(P.gaussian(img, sigma=2.0), cv2.GaussianBlur(img, (0, 0), 2.0))
        assert np.array_equal(P.median(img, ksize=5), cv2.medianBlur(img, 5))
        assert np.array_equal(P.gaussian(img, sigma=0), img)


class Test16Bit:
    def test_filters_refuse_raw_16_bit(self, ct_slice):
        for name in P.FILTERS:
            with pytest.raises(TypeError, match="windowed_uint8"):
                P.apply_filter(name, ct_slice)

    def test_outside_window_is_saturated_not_truncated(self, ct_slice):
        """3000 HU bone and -3024 padding must be 255 / 0 after windowing, not low-byte garbage."""
        img = P.windowed_uint8(ct_slice, 40, 400)
        assert (img[100:110, 60:70] == 255).all() and (img[5:8, 5:8] == 0).all()
        truncated = ct_slice.astype(np.uint8)  # what a naive cast would feed OpenCV
        assert not np.array_equal(P.equalize(img), cv2.equalizeHist(truncated))
        # the filters see exactly the window: identical output for any value beyond the window edge
        clipped = np.clip(ct_slice, -160, 240)
        assert np.array_equal(P.clahe(img), P.clahe(P.windowed_uint8(clipped, 40, 400)))

    def test_input_not_modified(self, ct_slice):
        img = P.windowed_uint8(ct_slice, 40, 400)
        before = img.copy()
        for name in P.FILTERS:
            P.apply_filter(name, img)
        assert np.array_equal(img, before)

    def test_non_contiguous_view(self, ct_slice):
        img = P.windowed_uint8(ct_slice, 40, 400)[::2, ::2]
        assert np.array_equal(
            P.clahe(img), cv2.createCLAHE(2.0, (8, 8)).apply(np.ascontiguousarray(img))
        )


class TestRegistry:
    def test_specs_build_controls(self):
        assert set(P.FILTERS) == {"clahe", "equalize", "canny", "sobel", "gaussian", "median"}
        for name, spec in P.FILTERS.items():
            for p in spec.params:
                assert p.minimum <= p.default <= p.maximum and p.kind in ("int", "odd", "float"), (
                    name,
                    p,
                )
            d = P.describe(name)
            json.dumps(d)
            assert d["params"] == P.default_params(name)

    def test_validation(self):
        assert P.validate_params("clahe", {"clip_limit": 4}) == {"clip_limit": 4.0, "tile_grid": 8}
        with pytest.raises(ValueError, match="tile_grid.*\\[1, 32\\]"):
            P.validate_params("clahe", {"tile_grid": 0})
        with pytest.raises(ValueError, match="odd"):
            P.validate_params("median", {"ksize": 4})
        with pytest.raises(ValueError, match="unknown parameter"):
            P.validate_params("canny", {"sigma": 1})
        with pytest.raises(ValueError, match="unknown filter"):
            P.apply_filter("unsharp", np.zeros((4, 4), np.uint8))

    def test_apply_uses_params(self, ct_slice):
        img = P.windowed_uint8(ct_slice, 40, 400)
        assert np.array_equal(P.apply_filter("median", img, ksize=7), cv2.medianBlur(img, 7))


class TestEdgesOverlay:
    def test_colour_and_alpha(self):
        img = np.full((4, 4), 100, np.uint8)
        edges = np.zeros((4, 4), np.uint8)
        edges[1, 2] = 255
        out = P.edges_overlay(img, edges, color=(255, 0, 0))
        assert out.shape == (4, 4, 3) and out[1, 2].tolist() == [255, 0, 0]
        assert out[0, 0].tolist() == [100, 100, 100]
        half = P.edges_overlay(img, edges, color=(255, 0, 0), alpha=0.5)
        assert half[1, 2].tolist() == [178, 50, 50] or half[1, 2].tolist() == [177, 50, 50]
        with pytest.raises(ValueError, match="shape"):
            P.edges_overlay(img, edges[:2])


def test_render_preview(ct_slice):
    img = P.windowed_uint8(ct_slice, 40, 400)
    edges = P.canny(img, low=20, high=60)
    over = P.render_preview(
        ct_slice, 40, 400, "canny", {"low": 20, "high": 60}, overlay=True, color=(0, 255, 0)
    )
    assert over.shape == (128, 128, 3) and (over[edges > 0] == [0, 255, 0]).all()
    assert (over[edges == 0] == np.repeat(img[edges == 0][:, None], 3, axis=1)).all()
    grey = P.render_preview(ct_slice, 40, 400, "clahe", {"clip_limit": 3})
    assert np.array_equal(grey[:, :, 1], P.clahe(img, clip_limit=3.0))
