"""Window/level, presets and overlay compositing (pure, no Qt)."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.display import (
    CT_PRESETS,
    HeatmapPlane,
    LabelPlane,
    RGBAPlane,
    auto_window,
    colormap,
    composite,
    default_window,
    pack_palette,
    presets_for,
    window_to_uint8,
)
from viewer.volume import Volume, VolumeMeta, WindowPreset


class TestWindowToUint8:
    def test_linear_ramp_and_clipping(self):
        hu = np.array([[-2000, -1000, -200, 0, 200, 1000, 3000]], np.int16)
        out = window_to_uint8(hu, 0, 400)
        # below the window: black (convertScaleAbs alone would make these bright)
        assert out[0, 0] == 0 and out[0, 1] == 0 and out[0, 2] == 0
        assert out[0, 3] in (127, 128)
        assert out[0, 4] == 255 and out[0, 5] == 255 and out[0, 6] == 255
        assert out.dtype == np.uint8

    def test_far_below_window_is_dark_not_bright(self):
        hu = np.full((4, 4), -1024, np.int16)
        assert window_to_uint8(hu, 40, 400).max() == 0

    def test_monotonic_and_matches_float_reference(self):
        hu = np.arange(-1200, 1200, 3, dtype=np.int16).reshape(1, -1)
        c, w = -600.0, 1500.0
        out = window_to_uint8(hu, c, w).astype(int)
        ref = np.clip((hu.astype(float) - (c - w / 2)) / w * 255, 0, 255)
        assert np.all(np.diff(out[0]) >= 0)
        assert np.abs(out - ref).max() <= 1.0

    def test_float_input(self):
        a = np.array([[0.0, 50.0, 100.0]], np.float32)
        np.testing.assert_array_equal(window_to_uint8(a, 50, 100)[0], [0, 128, 255])

    def test_monochrome1_inverts(self):
        hu = np.array([[-1000, 1000]], np.int16)
        normal = window_to_uint8(hu, 0, 400)
        inv = window_to_uint8(hu, 0, 400, invert=True)
        np.testing.assert_array_equal(inv, 255 - normal)
        assert inv[0, 0] == 255  # low values bright on MONOCHROME1

    def test_input_not_modified(self):
        hu = np.array([[-3000, 5000]], np.int16)
        before = hu.copy()
        window_to_uint8(hu, 0, 10)
        np.testing.assert_array_equal(hu, before)


class TestPresets:
    def test_ct_presets_present(self):
        names = [p.name for p in CT_PRESETS]
        for n in ("Lung", "Mediastinum", "Bone", "Brain", "Abdomen", "Liver"):
            assert n in names

    def test_header_window_first_then_ct(self):
        meta = VolumeMeta(modality="CT", window_presets=[WindowPreset("Header", 30, 300)])
        v = Volume(np.zeros((2, 4, 4), np.int16), (1, 1, 1), meta=meta)
        ps = presets_for(v)
        assert ps[0].name == "Header" and len(ps) == 1 + len(CT_PRESETS)
        assert default_window(v) == (30, 300)

    def test_mr_auto_window(self):
        rng = np.random.default_rng(0)
        data = rng.normal(500, 100, (4, 32, 32)).astype(np.float32)
        meta = VolumeMeta(modality="MR", units="")
        v = Volume(data, (1, 1, 1), meta=meta)
        assert presets_for(v) == []
        c, w = default_window(v)
        assert 450 < c < 550 and 300 < w < 600
        assert auto_window(np.zeros((3, 3))) == (0.5, 1.0)  # flat image: width never 0


class TestComposite:
    def test_label_colours_and_opacity(self):
        gray = np.full((4, 4), 100, np.uint8)
        labels = np.zeros((4, 4), np.uint8)
        labels[0, 0], labels[1, 1] = 1, 2
        pal = pack_palette({1: (255, 0, 0), 2: (0, 0, 255)})
        out = composite(gray, [LabelPlane(labels, pal, opacity=1.0)])
        np.testing.assert_array_equal(out[0, 0], [255, 0, 0])  # RGB order
        np.testing.assert_array_equal(out[1, 1], [0, 0, 255])
        np.testing.assert_array_equal(out[2, 2], [100, 100, 100])  # background untouched
        half = composite(gray, [LabelPlane(labels, pal, opacity=0.5)])
        assert abs(int(half[0, 0, 0]) - 178) <= 1 and abs(int(half[0, 0, 1]) - 50) <= 1

    def test_hidden_label_not_drawn(self):
        gray = np.zeros((2, 2), np.uint8)
        labels = np.array([[1, 2], [0, 0]], np.uint8)
        pal = pack_palette({1: (255, 0, 0), 2: (0, 255, 0)}, visible=[2])
        out = composite(gray, [LabelPlane(labels, pal, opacity=1.0)])
        np.testing.assert_array_equal(out[0, 0], [0, 0, 0])
        np.testing.assert_array_equal(out[0, 1], [0, 255, 0])

    def test_outline_keeps_only_border(self):
        gray = np.zeros((9, 9), np.uint8)
        labels = np.zeros((9, 9), np.uint8)
        labels[2:7, 2:7] = 1
        out = composite(gray, [LabelPlane(labels, pack_palette({1: (0, 255, 0)}), outline=True)])
        assert out[2, 4, 1] == 255 and out[4, 2, 1] == 255  # border
        assert out[4, 4, 1] == 0  # interior empty
        assert out[0, 0, 1] == 0

    def test_heatmap_threshold_and_colormap(self):
        gray = np.zeros((1, 3), np.uint8)
        heat = np.array([[0.0, 0.5, 1.0]])
        out = composite(gray, [HeatmapPlane(heat, colormap("jet"), opacity=1.0, threshold=0.1)])
        np.testing.assert_array_equal(out[0, 0], [0, 0, 0])
        assert out[0, 2, 0] > 120 and out[0, 2, 2] == 0  # hot end is red (RGB)
        assert out[0, 1, 1] > 200  # middle is green-ish

    def test_rgba_alpha(self):
        gray = np.full((1, 2), 100, np.uint8)
        rgba = np.array([[[200, 0, 0, 255], [200, 0, 0, 0]]], np.uint8)
        out = composite(gray, [RGBAPlane(rgba, opacity=0.5)])
        assert abs(int(out[0, 0, 0]) - 150) <= 1 and abs(int(out[0, 0, 1]) - 50) <= 1
        np.testing.assert_array_equal(out[0, 1], [100, 100, 100])

    def test_input_gray_untouched_and_rgb_passthrough(self):
        gray = np.full((3, 3), 7, np.uint8)
        out = composite(gray, [])
        assert out.shape == (3, 3, 3) and out.dtype == np.uint8 and np.all(out == 7)

    def test_unknown_colormap(self):
        with pytest.raises(ValueError, match="unknown colormap"):
            colormap("viridisx")
