"""``clinical-viewer scan`` and ``convert`` through viewer.cli.main (real files, real exit
codes)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from viewer.cli import main
from viewer.dicom.synth import write_series
from viewer.export.nifti import read_nifti


@pytest.fixture
def folder(tmp_path):
    v = np.random.default_rng(0).integers(-1024, 2000, (4, 8, 10)).astype(np.int16)
    write_series(
        tmp_path / "s1",
        v,
        spacing=(3.0, 0.5, 0.6),
        series_uid="1.2.826.0.1.3680043.8.498.1",
        series_description="Chest",
        series_number=2,
    )
    write_series(
        tmp_path / "s2",
        v[:2],
        series_uid="1.2.826.0.1.3680043.8.498.2",
        series_description="Scout",
        series_number=1,
        study_uid=None,
    )
    (tmp_path / "junk.txt").write_text("x")
    return tmp_path, v


def test_scan_json(folder, capsys):
    root, _ = folder
    assert main(["scan", str(root), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    series = [se for p in doc["patients"] for st in p["studies"] for se in st["series"]]
    chest = next(se for se in series if se["series_instance_uid"].endswith(".1"))
    assert (
        chest["description"] == "Chest" and chest["modality"] == "CT" and chest["image_count"] == 4
    )
    stack = chest["stacks"][0]
    assert (stack["rows"], stack["columns"]) == (8, 10)
    assert stack["spacing"] == pytest.approx([3.0, 0.5, 0.6])
    assert stack["warnings"] == [] and len(stack["files"]) == 4
    assert doc["stack_count"] == 2
    assert doc["skipped"] == [
        {"path": str(root / "junk.txt"), "reason": doc["skipped"][0]["reason"]}
    ]
    assert "not a DICOM file" in doc["skipped"][0]["reason"]


def test_scan_table(folder, capsys):
    assert main(["scan", str(folder[0])]) == 0
    out = capsys.readouterr().out
    assert "Chest" in out and "Scout" in out and "1 non-DICOM file(s): junk.txt" in out


def test_convert_by_series_uid(folder, tmp_path, capsys):
    root, v = folder
    out = tmp_path / "out" / "chest.nii.gz"
    assert (
        main(["convert", str(root), "--series", "1.2.826.0.1.3680043.8.498.1", "--out", str(out)])
        == 0
    )
    data, affine = read_nifti(out)
    np.testing.assert_array_equal(data, v)
    assert np.diag(affine)[:3] == pytest.approx([-0.6, -0.5, 3.0])
    assert "wrote" in capsys.readouterr().out


def test_convert_default_is_largest(folder, tmp_path):
    out = tmp_path / "largest.nii"
    assert main(["convert", str(folder[0]), "--out", str(out)]) == 0
    assert read_nifti(out)[0].shape == (4, 8, 10)


@pytest.mark.parametrize(
    "args,msg",
    [
        (["convert", "{root}/missing", "--out", "{tmp}/x.nii.gz"], "no such file or folder"),
        (
            ["convert", "{root}", "--series", "9.9.9", "--out", "{tmp}/x.nii.gz"],
            "series '9.9.9' not found",
        ),
        (["convert", "{root}", "--out", "{tmp}/x.png"], "must end in .nii or .nii.gz"),
        (["scan", "{root}/missing"], "no such file or folder"),
    ],
)
def test_bad_input_exit_2(folder, tmp_path, capsys, args, msg):
    root, _ = folder
    argv = [a.format(root=root, tmp=tmp_path) for a in args]
    assert main(argv) == 2
    assert msg in capsys.readouterr().err
    assert not (tmp_path / "x.nii.gz").exists()


def test_non_ascii_paths_with_spaces(tmp_path, capsys):
    src = tmp_path / "Ünïcödé study" / "série 1"
    v = np.random.default_rng(3).integers(-1024, 2000, (3, 8, 8)).astype(np.int16)
    write_series(src, v, file_names="Bild {:02d}.DCM")
    out = tmp_path / "résultat dir" / "vol ü.nii.gz"
    assert main(["convert", str(tmp_path / "Ünïcödé study"), "--out", str(out)]) == 0
    np.testing.assert_array_equal(read_nifti(out)[0], v)
    capsys.readouterr()
    assert main(["scan", str(src), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["stack_count"] == 1
