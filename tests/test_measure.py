"""Ruler and ROI statistics on synthetic planes with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from viewer.measure import plane_spacing, roi_mask, roi_stats, ruler_length_mm


def test_ruler_uses_anisotropic_spacing():
    assert ruler_length_mm((0, 0), (0, 100), (0.5, 0.7)) == pytest.approx(70.0)
    assert ruler_length_mm((0, 0), (100, 0), (0.5, 0.7)) == pytest.approx(50.0)
    assert ruler_length_mm((0, 0), (3, 4), (1.0, 1.0)) == pytest.approx(5.0)


def test_plane_spacing():
    sp = (2.5, 0.6, 0.7)
    assert plane_spacing(sp, 0) == (0.6, 0.7)
    assert plane_spacing(sp, 1) == (2.5, 0.7)
    assert plane_spacing(sp, 2) == (2.5, 0.6)


def test_rect_stats_known_values():
    plane = np.zeros((20, 20), np.int16)
    plane[5:10, 5:10] = 100
    plane[5, 5] = -50
    s = roi_stats(plane, (5, 5), (9, 9), (0.5, 2.0), "rect")
    assert s["pixels"] == 25 and s["area_mm2"] == pytest.approx(25.0)
    assert s["min"] == -50 and s["max"] == 100
    vals = np.full(25, 100.0)
    vals[0] = -50
    assert s["mean"] == pytest.approx(vals.mean()) and s["sd"] == pytest.approx(vals.std())


def test_ellipse_area_close_to_analytic():
    m = roi_mask((200, 200), (20, 20), (180, 180), "ellipse")
    assert m.sum() == pytest.approx(math.pi * 80 * 80, rel=0.01)
    s = roi_stats(np.ones((200, 200)), (20, 20), (180, 180), (0.5, 0.5), "ellipse")
    assert s["area_mm2"] == pytest.approx(math.pi * 40 * 40, rel=0.01)


def test_empty_roi_and_bad_kind():
    s = roi_stats(np.ones((10, 10)), (50, 50), (60, 60), (1, 1))
    assert s["pixels"] == 0 and math.isnan(s["mean"])
    with pytest.raises(ValueError, match="rect"):
        roi_mask((3, 3), (0, 0), (1, 1), "poly")
