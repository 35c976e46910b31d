"""The SHIPPED model (resources/models/lung-ct-unet) through segment_volume on a generated phantom.

Skipped when the package is not installed (a checkout without the model). The phantom comes
from :func:`inference.phantom.generate_volume` with a seed far from any training seed, at a
clinical pixel spacing (0.8 mm, resampled by the pipeline to the model's spacing), stored
head-first supine as a loader would build it (slice 0 most caudal), so the whole path —
reorientation, resampling, windowing, padding, stitching, post-processing — is exercised.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from inference.package import load_package, shipped_models_dir
from inference.pipeline import segment_volume
from inference.preprocess_input import ArrayVolume

PKG_DIR = shipped_models_dir() / "lung-ct-unet"

# Dice threshold per lung. The phantom is drawn from the training distribution (another seed);
# model.json "validation.synthetic_heldout" reports ~0.98 per lung for FP32 and INT8 on 64 held-out
# slices, and MODEL_NOTES.md shows even a 19-minute probe model reaching 0.90-0.96 on *real* CT.
# 0.90 leaves room for this phantom's thick (6 mm) slices and lung bases (partial volume) and for
# a retrained package, while every pipeline fault this test exists to catch fails it by far: a
# left/right swap gives ~0 per-lung Dice; a wrong window, spacing or orientation, or a crop off by
# a few pixels, drops it well below 0.9.
LUNG_DICE_MIN = 0.90


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum()) + int(b.sum())
    return 2.0 * int((a & b).sum()) / s if s else 1.0


@pytest.fixture(scope="module")
def shipped():
    if not (PKG_DIR / "model.json").is_file():
        pytest.skip(f"{PKG_DIR} is not installed")
    return load_package(PKG_DIR, verify=True)


@pytest.fixture(scope="module")
def phantom():
    phantom = pytest.importorskip("inference.phantom")
    hu, lab, info = phantom.generate_volume(
        np.random.default_rng(987_654),
        shape=(16, 420, 420),
        spacing=(6.0, 0.8, 0.8),
        z_range=(0.3, 0.7),
        lesions=1,
    )
    # generator order: slice 0 most cranial; a HFS loader stores slice 0 most caudal
    hu, lab = np.ascontiguousarray(hu[::-1]).astype(np.int16), np.ascontiguousarray(lab[::-1])
    vol = ArrayVolume(
        hu, (6.0, 0.8, 0.8), np.eye(3), SimpleNamespace(modality="CT", body_part="CHEST")
    )
    return vol, lab


def test_lungs_found_on_the_right_side(shipped, phantom) -> None:
    vol, truth = phantom
    res = segment_volume(vol, shipped, engine="onnx", threads=2)
    assert res.domain_warnings == []
    # the lesion label's caution from model.json comes with every result
    assert list(res.label_cautions) == [3] and res.caution_lines()[0].startswith("lesion: Not validated")
    assert res.to_dict()["label_cautions"] == {"3": res.label_cautions[3]}
    d_right = _dice(res.labels == 1, truth == 1)
    d_left = _dice(res.labels == 2, truth == 2)
    assert d_right > LUNG_DICE_MIN and d_left > LUNG_DICE_MIN, (d_right, d_left)
    # laterality check independent of Dice: the right lung's voxels lie at smaller x (patient right
    # is image left for HFS with x toward patient left)
    xr = np.nonzero(res.labels == 1)[2].mean()
    xl = np.nonzero(res.labels == 2)[2].mean()
    assert xr < xl


def test_int8_agrees_with_fp32(shipped, phantom) -> None:
    if not shipped.has_int8:
        pytest.skip("package has no INT8 model")
    vol, _ = phantom
    a = segment_volume(vol, shipped, engine="onnx", threads=2, keep_probabilities=False)
    b = segment_volume(vol, shipped, engine="onnx-int8", threads=2, keep_probabilities=False)
    for v in (1, 2):
        assert _dice(a.labels == v, b.labels == v) > 0.98


@pytest.mark.parametrize("position", ["FFS", "HFP"])
def test_dicom_round_trip_keeps_laterality(shipped, phantom, tmp_path, position: str) -> None:
    """Write the phantom as a real DICOM series acquired feet-first / prone, load it with the
    app's loader and segment: the right lung must land on the patient's right (LPS x < left's)."""
    from viewer.dicom.load import load_path
    from viewer.dicom.synth import write_series

    vol0, truth0 = (
        phantom  # HFS as loaded: slice 0 caudal, columns → patient left, rows → posterior
    )
    arr, lab = vol0.voxels[::-1], truth0[::-1]  # slice 0 cranial
    if position == "FFS":  # columns toward patient right, slices toward the feet
        img, ref, iop = arr[:, :, ::-1], lab[:, :, ::-1], (-1, 0, 0, 0, 1, 0)
    else:  # HFP: columns toward patient right, rows toward anterior, slices toward the head
        img, ref, iop = arr[::-1, ::-1, ::-1], lab[::-1, ::-1, ::-1], (-1, 0, 0, 0, -1, 0)
    write_series(
        tmp_path / position,
        np.ascontiguousarray(img),
        spacing=(6.0, 0.8, 0.8),
        iop=iop,
        patient_position=position,
        extra={"BodyPartExamined": "CHEST"},
    )
    vol = load_path(tmp_path / position)
    assert vol.shape == img.shape
    res = segment_volume(vol, shipped, engine="onnx", threads=2, keep_probabilities=False)
    assert _dice(res.labels == 1, ref == 1) > LUNG_DICE_MIN
    assert _dice(res.labels == 2, ref == 2) > LUNG_DICE_MIN
    aff = vol.affine_lps()

    def mean_lps_x(mask: np.ndarray) -> float:
        z, y, x = (c.mean() for c in np.nonzero(mask))
        return float(aff[0] @ np.array([x, y, z, 1.0]))

    assert mean_lps_x(res.labels == 1) < mean_lps_x(res.labels == 2)


def test_cli_on_real_chest_ct(shipped, shared_data, tmp_path) -> None:
    """`clinical-viewer segment` on a real chest CT (TCIA Lung-PET-CT-Dx, 30 x 8 mm, HFS):
    plausible lung volumes (0.5-5 L each, the scan covers both lungs) and correct sides."""
    import json

    import nibabel as nib

    from viewer.cli import main

    src = shared_data / "chest-ct-lungdx-a0002" / "series3_8mm_B40f"
    out = tmp_path / "out"
    assert (
        main(["segment", str(src), "--model", "lung-ct-unet", "--threads", "2", "--out", str(out)])
        == 0
    )
    doc = json.loads((out / "stats.json").read_text())
    by = {e["name"]: e for e in doc["statistics"]["labels"]}
    for side in ("right lung", "left lung"):
        assert 500 < by[side]["volume_ml"] < 5000, (side, by[side]["volume_ml"])
        assert -950 < by[side]["hu"]["mean"] < -500  # aerated lung, not soft tissue
    img = nib.load(str(out / "labels.nii.gz"))
    lab = np.asarray(img.dataobj)
    ras_x = [
        float((img.affine @ np.array([*np.argwhere(lab == v).mean(0), 1.0]))[0]) for v in (1, 2)
    ]
    assert ras_x[0] > ras_x[1]  # RAS: +x is the patient's right
