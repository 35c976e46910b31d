"""Domain check: in-domain chest CT passes; MR, head CT, radiograph, odd spacing are flagged."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from inference.domain import DomainError, check_domain
from inference.package import load_package
from inference.pipeline import segment_volume
from inference.preprocess_input import ArrayVolume
from tests.test_engines import band_package


@pytest.fixture(scope="module")
def pkg(tmp_path_factory: pytest.TempPathFactory):
    return load_package(band_package(tmp_path_factory.mktemp("dom") / "dom"))


def _chest(
    modality: str = "CT",
    body: str = "CHEST",
    shape=(4, 512, 512),
    sp=(5.0, 0.7, 0.7),
    direction=None,
) -> ArrayVolume:
    rng = np.random.default_rng(0)
    vox = rng.integers(-1000, 400, shape).astype(np.int16)
    vox[:, :20] = -3024  # padding outside a circular reconstruction: must not trip the HU check
    return ArrayVolume(
        vox,
        sp,
        np.eye(3) if direction is None else direction,
        SimpleNamespace(modality=modality, body_part=body),
    )


class TestCheckDomain:
    def test_chest_ct_in_domain(self, pkg) -> None:
        assert check_domain(_chest(), pkg) == []
        assert check_domain(_chest(body=""), pkg) == []

    def test_mr(self, pkg) -> None:
        mr = _chest(modality="MR", body="BRAIN")
        mr.voxels = np.random.default_rng(1).integers(0, 4000, mr.voxels.shape).astype(np.int16)
        w = check_domain(mr, pkg)
        assert any("modality is MR" in s and "expects CT" in s for s in w)
        assert any("BRAIN" in s for s in w)
        assert any("outside -1100..3100 HU" in s for s in w)

    def test_head_ct(self, pkg) -> None:
        w = check_domain(_chest(body="HEAD", shape=(4, 512, 512), sp=(5.0, 0.45, 0.45)), pkg)
        assert any("field of view 230 mm is smaller" in s for s in w)
        assert any("body part is HEAD" in s for s in w)

    def test_radiograph(self, pkg) -> None:
        w = check_domain(_chest(modality="DX", shape=(1, 2000, 2000), sp=(1.0, 0.15, 0.15)), pkg)
        assert any("modality is DX" in s for s in w)
        assert any("pixel spacing 0.15 x 0.15 mm is outside" in s for s in w)

    def test_oblique_and_coronal(self, pkg) -> None:
        a = np.radians(25)
        tilt = np.array([[1, 0, 0], [0, np.cos(a), np.sin(a)], [0, -np.sin(a), np.cos(a)]]).T
        assert any("oblique (25°" in s for s in check_domain(_chest(direction=tilt), pkg))
        cor = np.array(
            [[1, 0, 0], [0, 0, -1], [0, 1, 0]], float
        ).T  # rows toward feet, slices toward P
        w = check_domain(_chest(shape=(512, 4, 512), sp=(0.7, 5.0, 0.7), direction=cor), pkg)
        assert any("slices are coronal" in s for s in w)

    def test_rgb(self, pkg) -> None:
        rgb = ArrayVolume(np.zeros((1, 8, 8, 3), np.uint8), (1, 1, 1), np.eye(3))
        assert "not a grey-level volume" in check_domain(rgb, pkg)[0]


def test_pipeline_refuses_mr_unless_forced(tmp_path: Path, pkg) -> None:
    mr = ArrayVolume(
        np.full((2, 384, 384), 300, np.int16),
        (4.0, 0.8, 0.8),
        np.eye(3),
        SimpleNamespace(modality="MR", body_part="CHEST"),
    )
    with pytest.raises(DomainError, match="modality is MR.*--force") as ei:
        segment_volume(mr, pkg)
    assert ei.value.warnings and "MR" in ei.value.warnings[0]
    res = segment_volume(mr, pkg, force_domain=True)
    assert any("modality is MR" in w for w in res.domain_warnings)
    assert res.to_dict()["domain_warnings"] == res.domain_warnings


def test_ct_without_rescale_is_flagged(pkg) -> None:
    raw = _chest()
    raw.voxels = (raw.voxels.clip(-1000, None) + 1024).astype(
        np.int16
    )  # stored values, intercept missing
    assert any("no air in the image" in s for s in check_domain(raw, pkg))


def test_real_scans(shared_data: Path, pkg) -> None:
    """Real chest CTs are in the domain; pydicom's MR sample is not (and why)."""
    from pydicom.data import get_testdata_file

    from viewer.dicom.load import load_path

    chest = load_path(shared_data / "chest-ct-lungdx-a0002" / "series3_8mm_B40f")
    assert check_domain(chest, pkg) == []
    mr = load_path(get_testdata_file("MR_small.dcm"))
    w = check_domain(mr, pkg)
    assert any("modality is MR" in s for s in w) and any("field of view 20 mm" in s for s in w)
