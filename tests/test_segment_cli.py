"""``clinical-viewer segment`` end to end: real DICOM (viewer.dicom.synth) → real ONNX → files.

The model is the "band" ONNX predictor (tests/test_engines.py) installed in the per-test user
models folder, so every output voxel and every statistic is known in advance.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.test_engines import band_package
from viewer.cli import main
from viewer.dicom.synth import write_series

ROOT = Path(__file__).resolve().parents[1]
LABELS = [
    {"value": 0, "name": "background", "color": [0, 0, 0]},
    {"value": 1, "name": "right lung", "color": [220, 80, 60]},
    {"value": 2, "name": "left lung", "color": [60, 120, 220]},
    {"value": 3, "name": "lesion", "color": [250, 210, 40], "caution": "Research only: not validated."},
]
# normalised centres 0, .5, .75, 1 (window -600/1500): air -1050 → 0, -600 → 1, -225 → 2, 150 → 3
CENTRES = (0.0, 0.5, 0.75, 1.0)


def _phantom() -> tuple[np.ndarray, np.ndarray]:
    hu = np.full((8, 256, 256), -1050, np.int16)
    lab = np.zeros(hu.shape, np.uint8)
    hu[1:7, 60:200, 30:120] = -600
    lab[1:7, 60:200, 30:120] = 1
    hu[1:7, 60:200, 136:226] = -225
    lab[1:7, 60:200, 136:226] = 2
    hu[3:5, 100:110, 50:62] = 150  # lesion: 2 x 10 x 12 voxels
    lab[3:5, 100:110, 50:62] = 3
    return hu, lab


@pytest.fixture
def model_dir() -> Path:
    root = Path(os.environ["CLINICAL_VIEWER_MODELS"]) / "band-cli"
    band_package(root, CENTRES, labels=LABELS)
    return root


@pytest.fixture
def series(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    hu, lab = _phantom()
    folder = tmp_path / "dicom" / "ct"
    write_series(
        folder,
        hu,
        spacing=(2.5, 1.0, 1.0),
        origin=(-128.0, -128.0, -100.0),
        series_number=3,
        extra={"BodyPartExamined": "CHEST"},
    )
    return folder, hu, lab


def _run(*argv: str) -> int:
    return main(["segment", *argv])


class TestSegmentOne:
    def test_end_to_end(self, model_dir, series, tmp_path, capsys) -> None:
        folder, hu, lab = series
        out = tmp_path / "out"
        assert _run(str(folder), "--model", "band-cli", "--threads", "1", "--out", str(out)) == 0
        cap = capsys.readouterr()
        assert "segment" in cap.err and "100.0%" in cap.err  # the progress bar
        import nibabel as nib

        img = nib.load(str(out / "labels.nii.gz"))
        got = np.asarray(img.dataobj).transpose(2, 1, 0)
        np.testing.assert_array_equal(got, lab)
        # RAS affine: x index runs toward patient left = -R
        assert img.affine[0, 0] == pytest.approx(-1.0) and img.affine[2, 2] == pytest.approx(2.5)
        doc = json.loads((out / "stats.json").read_text())
        by = {e["name"]: e for e in doc["statistics"]["labels"]}
        assert by["right lung"]["voxels"] == int((lab == 1).sum())
        assert by["lesion"]["volume_ml"] == pytest.approx(240 * 2.5 / 1000)
        assert by["left lung"]["hu"]["mean"] == -225.0
        les = doc["statistics"]["lesions"]["3"]
        assert les["count"] == 1 and les["components"][0][
            "longest_axial_diameter_mm"
        ] == pytest.approx(np.hypot(10, 12), abs=0.01)
        assert doc["model"]["name"] == "band-cli" and len(doc["model"]["sha256"]) == 64
        assert (
            doc["engine"]["providers"] == ["CPUExecutionProvider"] and doc["engine"]["threads"] == 1
        )
        assert doc["domain_warnings"] == [] and "inference" in doc["timings_s"]
        # the package's label caution travels with the result: stats.json and the terminal
        assert doc["label_cautions"] == ["lesion: Research only: not validated."]
        assert "caution: lesion: Research only: not validated." in cap.err
        for f in doc["files"]:
            assert (out / f).is_file(), f
        if "seg.dcm" in doc["files"]:
            import pydicom

            assert pydicom.dcmread(out / "seg.dcm").Modality == "SEG"

    def test_mr_refused_then_forced(self, model_dir, tmp_path, capsys) -> None:
        folder = tmp_path / "mr"
        write_series(
            folder, np.full((3, 256, 256), 300, np.int16), spacing=(4, 1, 1), modality="MR"
        )
        assert _run(str(folder), "--model", "band-cli", "--out", str(tmp_path / "o1")) == 2
        assert "modality is MR" in capsys.readouterr().err
        assert not (tmp_path / "o1" / "labels.nii.gz").exists()
        assert (
            _run(str(folder), "--model", "band-cli", "--force", "--out", str(tmp_path / "o2")) == 0
        )
        doc = json.loads((tmp_path / "o2" / "stats.json").read_text())
        assert doc["forced"] is True and any("modality is MR" in w for w in doc["domain_warnings"])

    def test_bad_inputs_exit_2(self, model_dir, series, tmp_path, capsys) -> None:
        folder, _, _ = series
        assert (
            _run(str(tmp_path / "nope"), "--model", "band-cli", "--out", str(tmp_path / "o")) == 2
        )
        assert _run(str(folder), "--model", "no-such-model", "--out", str(tmp_path / "o")) == 2
        assert "no model package named 'no-such-model'" in capsys.readouterr().err
        assert (
            _run(
                str(folder),
                "--model",
                "band-cli",
                "--series",
                "1.2.3",
                "--out",
                str(tmp_path / "o"),
            )
            == 2
        )
        assert (
            _run(
                str(folder),
                "--model",
                "band-cli",
                "--engine",
                "torch",
                "--out",
                str(tmp_path / "o"),
            )
            == 2
        )
        assert "has no torch file" in capsys.readouterr().err
        with open(model_dir / "model.onnx", "ab") as f:
            f.write(b"x")
        assert _run(str(folder), "--model", "band-cli", "--out", str(tmp_path / "o")) == 2
        assert "refusing to load it" in capsys.readouterr().err


def test_batch_continues_past_bad_series(model_dir, series, tmp_path, capsys) -> None:
    folder, _, lab = series
    write_series(
        folder.parent / "mr",
        np.full((3, 256, 256), 300, np.int16),
        spacing=(4, 1, 1),
        modality="MR",
        series_number=7,
    )
    out = tmp_path / "batch"
    assert _run(str(folder.parent), "--model", "band-cli", "--anonymize", "--out", str(out)) == 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["label_cautions"] == ["lesion: Research only: not validated."]
    status = {r["folder"].split("_")[0]: r["status"] for r in summary["series"]}
    assert (
        status == {"003": "ok", "007": "bad input"}
        and summary["ok"] == 1
        and summary["failed"] == 1
    )
    ok = next(r["folder"] for r in summary["series"] if r["status"] == "ok")
    doc = json.loads((out / ok / "stats.json").read_text())
    assert "series_instance_uid" not in doc["series"] and "description" not in doc["series"]
    assert "Demo" not in (out / ok / "stats.json").read_text()  # no patient name anywhere
    assert "segmented 1/2 series" in capsys.readouterr().out


def test_console_script_exit_code(tmp_path: Path) -> None:
    """The real entry point in a fresh process: bad input → exit 2 with the message on stderr."""
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "viewer.cli",
            "segment",
            str(tmp_path / "missing"),
            "--out",
            str(tmp_path / "o"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CLINICAL_VIEWER_MODELS": str(tmp_path / "models")},
    )
    assert r.returncode == 2, r.stderr
    assert "clinical-viewer:" in r.stderr
