"""``clinical-viewer compare`` end to end: real DICOM files, a real model package, real engines."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
from compare_fixtures import (  # noqa: E402
    export_onnx,
    onnx_initializer_names,
    perturb_onnx,
    tiny_unet,
    write_package,
)

from viewer.cli import main  # noqa: E402
from viewer.dicom.synth import write_series  # noqa: E402

NAME = "Secret^Patient"


def _phantom_hu(nz: int = 6, size: int = 40) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    c = (size - 1) / 2
    body = ((yy - c) / 0.45 / size) ** 2 + ((xx - c) / 0.48 / size) ** 2 < 1
    lungs = (((yy - c) / 0.3 / size) ** 2 + ((np.abs(xx - c) - size * 0.2) / 0.15 / size) ** 2) < 1
    vol = np.full((nz, size, size), -1000, np.int16)
    vol[:, body] = 40
    vol[:, lungs] = -850
    for z in range(2, 4):
        vol[z, 14:19, 9:14] = 30  # a nodule in two slices
    return vol


@pytest.fixture
def dicom_dir(tmp_path: Path) -> Path:
    write_series(
        tmp_path / "dicom",
        _phantom_hu(),
        spacing=(3.0, 0.9, 0.9),
        patient_name=NAME,
        series_description="cmp test",
    )
    return tmp_path / "dicom"


def _install(tmp_path: Path, name: str, *, perturb_int8: bool = False) -> Path:
    """A UNet2D package (torch + onnx [+ a perturbed onnx as 'INT8']) in the user models folder."""
    work = tmp_path / f"build-{name}"
    work.mkdir()
    net = tiny_unet(seed=2, num_classes=3)
    # centre the random head on the phantom so all three labels occur (a non-trivial comparison)
    x = np.clip((_phantom_hu()[:, None, :32, :32].astype(np.float32) + 1350.0) / 1500.0, 0, 1)
    with torch.no_grad():
        logits = net(torch.from_numpy(x))
        net.head.bias -= logits.mean(dim=(0, 2, 3))
    torch.save(net.state_dict(), work / "model.pt")
    onnx_path = export_onnx(net, work / "model.onnx", size=32)
    files = {"onnx": onnx_path, "torch": work / "model.pt"}
    if perturb_int8:
        bias = [
            n
            for n in onnx_initializer_names(onnx_path)
            if n.startswith("head") and n.endswith("bias")
        ][0]
        files["onnx_int8"] = perturb_onnx(onnx_path, work / "model.int8.onnx", bias, (2,), 5.0)
    root = Path(os.environ["CLINICAL_VIEWER_MODELS"]) / name
    return write_package(
        root,
        name,
        files,
        torch_spec={
            "architecture": "UNet2D",
            "args": net.config,
            "gradcam_target_layer": "decoder.1",
        },
        window=(-600.0, 1500.0),
        divisible_by=4,
    )


def test_compare_passes_and_writes_outputs(tmp_path, dicom_dir, capsys):
    _install(tmp_path, "tiny")
    out = tmp_path / "out"
    code = main(
        ["compare", str(dicom_dir), "--model", "tiny", "--engines", "torch,onnx", "--out", str(out)]
    )
    assert code == 0, capsys.readouterr().err
    doc = json.loads((out / "compare.json").read_text())
    assert doc["passed"] is True and doc["engines"] == ["torch", "onnx"]
    pair = doc["pairs"][0]
    assert pair["passed"] and pair["logits_max_abs"] < 1e-4
    assert len(pair["per_slice"]["flips"]) == 6 and len(pair["per_slice"]["dice"]) == 6
    assert {m["name"] for m in pair["labels"]} == {"tissue", "lesion"}
    assert all(m["voxels_a"] > 0 and m["dice"] > 0.999 for m in pair["labels"])
    assert set(doc["timing"]) == {"torch", "onnx"} and doc["timing"]["onnx"]["per_slice_ms"] > 0
    assert doc["thresholds"]["dice_fp32"] == 0.999
    assert doc["series"]["description"] == "cmp test"
    png = cv2.imread(str(out / "difference_worst_slice.png"))
    assert png is not None and png.shape[1] > 2 * png.shape[0] // 2
    text = (out / "compare.json").read_text()
    assert "Secret" not in text
    assert "PASS" in capsys.readouterr().out

    code = main(
        [
            "compare",
            str(dicom_dir),
            "--model",
            "tiny",
            "--engines",
            "torch,onnx",
            "--anonymize",
            "--out",
            str(tmp_path / "anon"),
        ]
    )
    anon_doc = json.loads((tmp_path / "anon" / "compare.json").read_text())
    assert doc["masks"] == "raw argmax" and anon_doc["masks"] == "raw argmax"
    args = ["compare", str(dicom_dir), "--model", "tiny", "--engines=torch,onnx", "--postprocess"]
    assert main([*args, "--out", str(tmp_path / "pp")]) == 0
    assert json.loads((tmp_path / "pp" / "compare.json").read_text())["masks"] == "post-processed"
    assert (
        code == 0
        and "series_instance_uid" not in anon_doc["series"]
        and "description" not in anon_doc["series"]
    )
    if (out / "report.pdf").exists():  # the PDF exporter is installed: it must carry the verdict
        import shutil
        import subprocess

        assert "report.pdf" in doc["files"] and not doc["export_problems"]
        if shutil.which("pdftotext"):
            txt = subprocess.run(
                ["pdftotext", str(out / "report.pdf"), "-"], capture_output=True, text=True
            ).stdout
            assert "Verdict: PASS" in txt
            anon = subprocess.run(
                ["pdftotext", str(tmp_path / "anon" / "report.pdf"), "-"],
                capture_output=True,
                text=True,
            ).stdout
            assert "Verdict: PASS" in anon and "Secret" not in anon
    else:
        assert doc["export_problems"] == [], doc["export_problems"]


def test_failing_verdict_exits_1(tmp_path, dicom_dir, capsys):
    _install(tmp_path, "tiny-bad", perturb_int8=True)
    out = tmp_path / "out"
    code = main(["compare", str(dicom_dir), "--model", "tiny-bad", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    doc = json.loads((out / "compare.json").read_text())
    assert doc["passed"] is False
    by_b = {p["b"]: p for p in doc["pairs"]}
    assert by_b["onnx"]["passed"] is True
    assert by_b["onnx-int8"]["passed"] is False and by_b["onnx-int8"]["threshold_dice"] == 0.99
    assert doc["worst"]["b"] == "onnx-int8"
    assert (out / "difference_worst_slice.png").is_file()
    assert "FAIL" in captured.out
    # the user can see and change the thresholds: a (silly) zero threshold lets it pass
    code = main(
        [
            "compare",
            str(dicom_dir),
            "--model",
            "tiny-bad",
            "--min-dice-int8",
            "0",
            "--out",
            str(tmp_path / "loose"),
        ]
    )
    assert code == 0
    assert (
        json.loads((tmp_path / "loose" / "compare.json").read_text())["thresholds"]["dice_int8"]
        == 0.0
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--engines", "torch"], "at least two"),
        (["--engines", "torch,tensorflow"], "unknown engine"),
        (["--model", "no-such-model"], "no model package named"),
        (["--min-dice-fp32", "1.5"], "must be in"),
    ],
)
def test_bad_input_exits_2(tmp_path, dicom_dir, capsys, argv, message):
    _install(tmp_path, "tiny")
    args = ["compare", str(dicom_dir), "--out", str(tmp_path / "o")]
    if "--model" not in argv:
        args += ["--model", "tiny"]
    assert main(args + argv) == 2
    assert message in capsys.readouterr().err


def test_missing_path_exits_2(tmp_path, capsys):
    _install(tmp_path, "tiny")
    assert (
        main(
            ["compare", str(tmp_path / "nowhere"), "--model", "tiny", "--out", str(tmp_path / "o")]
        )
        == 2
    )
    assert "nowhere" in capsys.readouterr().err


def test_real_chest_ct_with_shipped_model(shared_data, tmp_path, capsys):
    """Real DICOM (8 mm chest CT) end to end: ONNX FP32 vs INT8 of the shipped model."""
    from compare_fixtures import shipped_package

    shipped_package()  # skips while the package is absent
    series = shared_data / "chest-ct-lungdx-a0002" / "series3_8mm_B40f"
    if not series.is_dir():
        pytest.skip(f"{series} not present")
    out = tmp_path / "real"
    code = main(["compare", str(series), "--engines", "onnx,onnx-int8", "--out", str(out)])
    doc = json.loads((out / "compare.json").read_text())
    assert code == (0 if doc["passed"] else 1), capsys.readouterr().err
    pair = doc["pairs"][0]
    assert len(pair["per_slice"]["flips"]) == 30 and 0 <= doc["worst"]["original_slice"] < 30
    vols = {m["name"]: m["volume_a_ml"] for m in pair["labels"]}
    assert vols["right lung"] > 300 and vols["left lung"] > 300  # both lungs found on a chest CT
    assert pair["logits_max_abs"] > 0  # INT8 is not bit-identical to FP32
    assert cv2.imread(str(out / "difference_worst_slice.png")) is not None
