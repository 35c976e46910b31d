"""Plane geometry of the three views: orientation letters, flips and index mapping (no widgets)."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.qt.view_geometry import PlaneGeometry, orientation_letters
from viewer.volume import Volume


def vol(direction, shape=(5, 6, 7), spacing=(2.0, 0.5, 0.7)):
    return Volume(
        np.arange(np.prod(shape), dtype=np.int16).reshape(shape), spacing, direction=direction
    )


AXIAL_HFS = np.eye(3)  # rows → L, columns → P, slices → H
AXIAL_REVERSED = np.diag([1.0, 1.0, -1.0])  # slices stacked towards the feet
CORONAL = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], float).T  # columns: x → L, y → F, z → P


def test_letters_axial():
    g = PlaneGeometry(vol(AXIAL_HFS), 0)
    assert g.letters() == {"right": "L", "left": "R", "bottom": "P", "top": "A"}
    assert PlaneGeometry(vol(AXIAL_HFS), 1).letters() == {
        "right": "L",
        "left": "R",
        "bottom": "F",
        "top": "H",
    }
    assert PlaneGeometry(vol(AXIAL_HFS), 2).letters() == {
        "right": "P",
        "left": "A",
        "bottom": "F",
        "top": "H",
    }


def test_head_is_up_in_reformats_whatever_the_slice_order():
    for d in (AXIAL_HFS, AXIAL_REVERSED):
        g = PlaneGeometry(vol(d), 1)
        assert g.letters()["top"] == "H"
        # the top row of the displayed coronal plane is the most cranial slice
        top_z = g.display_to_voxel(0, 0, 0)[0]
        assert vol(d).index_to_lps(top_z, 0, 0)[2] == max(
            vol(d).index_to_lps(z, 0, 0)[2] for z in range(5)
        )


def test_coronal_acquisition_labels():
    g = PlaneGeometry(vol(CORONAL), 0)  # the first view shows the acquired (coronal) slices
    assert g.plane_name() == "coronal"
    assert PlaneGeometry(vol(CORONAL), 1).plane_name() == "axial"
    assert [PlaneGeometry(vol(AXIAL_HFS), a).plane_name() for a in range(3)] == [
        "axial",
        "coronal",
        "sagittal",
    ]
    assert g.letters() == {"right": "L", "left": "R", "bottom": "F", "top": "H"}


def test_oblique_gets_two_letters():
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    letters = orientation_letters(np.array([c, s, 0.0]), np.array([-s, c, 0.0]))
    assert letters["right"] == "LP" and letters["left"] == "RA"


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_display_voxel_round_trip_and_plane_values(axis):
    v = vol(AXIAL_HFS)
    g = PlaneGeometry(v, axis)
    index = 2
    plane = g.plane(index)
    assert plane.shape == g.shape
    for row, col in ((0, 0), (g.shape[0] - 1, 1), (1, g.shape[1] - 1)):
        z, y, x = g.display_to_voxel(index, row, col)
        assert plane[row, col] == v.voxels[int(z), int(y), int(x)]
        assert g.voxel_to_display(z, y, x) == pytest.approx((row, col))


def test_spacing_per_view():
    v = vol(AXIAL_HFS)
    assert PlaneGeometry(v, 0).spacing == (0.5, 0.7)
    assert PlaneGeometry(v, 1).spacing == (2.0, 0.7)
    assert PlaneGeometry(v, 2).spacing == (2.0, 0.5)
