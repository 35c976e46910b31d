"""The SHIPPED model package: integrity, ONNX Runtime sessions, accuracy on a fresh phantom slice, CLI."""

from __future__ import annotations

import json

import pytest

from inference.package import PackageError, load_package, shipped_models_dir
from inference.quantize import ort_session

PKG_DIR = shipped_models_dir() / "lung-ct-unet"

# Lung Dice threshold for one fresh phantom slice. The shipped model scores ~0.95+ per lung on
# the held-out phantom set (docs/model.md); 0.80 leaves room for a hard slice (a lung base with a
# small lung cross-section) while still failing for a broken, untrained, or left/right-swapped model
# (a swap gives Dice ~0 per lung).
MIN_LUNG_DICE = 0.80


@pytest.fixture(scope="module")
def pkg():
    if not (PKG_DIR / "model.json").is_file():
        pytest.fail(f"{PKG_DIR}/model.json missing: the app ships this model")
    return load_package(PKG_DIR, verify=True)


def test_hashes_and_schema(pkg) -> None:
    assert pkg.name == "lung-ct-unet"
    assert [lab.name for lab in pkg.labels] == ["background", "right lung", "left lung", "lesion"]
    assert len({lab.color for lab in pkg.labels}) == 4
    assert {"onnx", "onnx_int8", "torch"} <= set(pkg.files)
    assert pkg.input.inplane_policy == "spacing" and pkg.input.spacing_mm and pkg.input.channels == 1
    assert pkg.torch_spec["gradcam_target_layer"] == "decoder.3"
    assert pkg.raw["parity"]["onnx_vs_torch"]["max_abs_logit_diff"] < 1e-3
    assert pkg.file("onnx").stat().st_size < 12e6


def test_lesion_label_carries_its_caution(pkg, tmp_path) -> None:
    """The lesion label is not validated on real CT (docs/model.md): the package says so, the lungs don't."""
    import shutil

    from inference.release import LABELS, LESION_CAUTION

    cautions = {lab.name: lab.caution for lab in pkg.labels}
    assert cautions["lesion"] == LESION_CAUTION and "Not validated on real CT" in LESION_CAUTION
    assert cautions["right lung"] == cautions["left lung"] == ""
    assert [lab.get("caution", "") for lab in LABELS] == ["", "", "", LESION_CAUTION]  # new exports too
    copy = tmp_path / "pkg"
    shutil.copytree(PKG_DIR, copy)
    mj = json.loads((copy / "model.json").read_text())
    del mj["labels"][3]["caution"]  # optional: an older package without it still loads
    (copy / "model.json").write_text(json.dumps(mj))
    assert [lab.caution for lab in load_package(copy).labels] == ["", "", "", ""]
    mj["labels"][3]["caution"] = ["not", "a", "string"]
    (copy / "model.json").write_text(json.dumps(mj))
    with pytest.raises(PackageError, match="'caution' must be a string"):
        load_package(copy)


def test_tampered_file_is_refused(pkg, tmp_path) -> None:
    import shutil

    copy = tmp_path / "lung-ct-unet"
    shutil.copytree(PKG_DIR, copy)
    with open(copy / "model.int8.onnx", "r+b") as f:
        f.seek(100)
        b = f.read(1)
        f.seek(100)
        f.write(bytes([b[0] ^ 0xFF]))
    with pytest.raises(PackageError, match="SHA-256"):
        load_package(copy, verify=True)


@pytest.fixture(scope="module")
def phantom_case(pkg):
    from inference.evaluate import heldout_slices

    spec = pkg.input
    # seed outside every training / calibration / held-out seed used to build the package
    return heldout_slices(2, 4242, spacing_mm=spec.spacing_mm, center=spec.window_center,
                          width=spec.window_width, canvas=256)


@pytest.mark.parametrize("kind", ["onnx", "onnx_int8"])
def test_engine_segments_a_fresh_phantom_slice(pkg, phantom_case, kind) -> None:
    x, y = phantom_case
    logits = ort_session(pkg.file(kind)).run(["logits"], {"image": x})[0]
    assert logits.shape == (2, 4, 256, 256)
    pred = logits.argmax(1)
    for lab in (1, 2):
        a, b = pred == lab, y == lab
        dice = 2 * (a & b).sum() / max(1, a.sum() + b.sum())
        assert dice > MIN_LUNG_DICE, f"{kind}: {pkg.label_name(lab)} Dice {dice:.3f}"


def test_cli_model_list(capsys) -> None:
    from viewer.cli import main

    assert main(["model", "list", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    names = [p["name"] for p in out["packages"]]
    assert "lung-ct-unet" in names


def test_cli_model_validate(capsys) -> None:
    from viewer.cli import main

    rc = main(["model", "validate", "lung-ct-unet", "-n", "4", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["checks"]["hashes"] == "ok"
    assert out["checks"]["onnx_vs_torch"]["max_abs_logit_diff"] < 1e-3
    assert set(out["checks"]["int8_vs_fp32"]["dice"]) == {"1", "2", "3"}
    assert rc == (0 if out["ok"] else 1)
    assert out["ok"], out["failures"]


def test_cli_validate_unknown_name_is_bad_input(capsys) -> None:
    from viewer.cli import main

    assert main(["model", "validate", "no-such-model"]) == 2
    assert "no model package named" in capsys.readouterr().err
