"""compare_engines on real engines: a torch module, its ONNX export, and a perturbed ONNX copy."""

from __future__ import annotations

import json

import numpy as np
import pytest
from compare_fixtures import (
    GATED_WEIGHT,
    export_onnx,
    gated_input,
    gated_model,
    perturb_onnx,
    phantom_volume,
    shipped_package,
    tiny_unet,
    write_package,
)

from inference.compare import Thresholds, compare_engines
from inference.jobs import Cancelled
from inference.onnx_engine import OnnxEngine
from inference.package import PackageError, load_package

LESION_SLICES = (4, 5, 6)


def _torch_engine(model):
    import torch

    def run(x):
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy()

    return run


@pytest.fixture(scope="module")
def gated(tmp_path_factory):
    d = tmp_path_factory.mktemp("gated")
    model = gated_model()
    good = export_onnx(model, d / "model.onnx")
    bad = perturb_onnx(good, d / "model.perturbed.onnx", GATED_WEIGHT, (2, 1, 0, 0), 3.0)
    return model, good, bad


def test_perturbed_onnx_is_caught_on_the_slices_it_breaks(gated):
    model, good, bad = gated
    x = gated_input(nz=10, lesion_slices=LESION_SLICES)
    pkg = write_package(gated[1].parent / "pkg", "gated", {"onnx": good})
    calls = []
    res = compare_engines(
        x,
        load_package(pkg),
        [
            ("torch", _torch_engine(model)),
            ("onnx", OnnxEngine(good)),
            ("onnx-perturbed", OnnxEngine(bad)),
        ],
        spacing=(2.0, 0.8, 0.8),
        batch_size=3,
        progress=lambda d, t, m: calls.append((d, t)),
    )
    fp32 = res.pair("torch", "onnx")
    assert fp32.passed and fp32.flips == 0 and fp32.logits_max_abs < 1e-5
    broken = res.pair("torch", "onnx-perturbed")
    assert not broken.passed
    assert any("lesion" in r for r in broken.reasons)
    flipped = set(np.nonzero(broken.slice_flips)[0].tolist())
    assert flipped and flipped <= set(LESION_SLICES)  # only the slices with bright voxels
    assert broken.worst_slice in LESION_SLICES
    assert broken.logits_max_abs > 0.1
    assert not res.passed and res.worst[0] is broken
    # the flipped voxels were lesion in torch and became tissue (label swapped)
    z = broken.worst_slice
    rgb = res.difference_rgb(z, "torch", "onnx-perturbed", backdrop=False)
    diff = res.labels["torch"][z] != res.labels["onnx-perturbed"][z]
    assert (rgb[diff] == [230, 0, 230]).all() and (rgb[~diff] == 0).all()
    assert calls[-1] == (10, 10) and len(calls) == 4
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert d["passed"] is False and d["worst"]["slice"] == z
    assert set(d["timing"]) == {"torch", "onnx", "onnx-perturbed"}
    assert all(t["slices"] == 10 and t["total_s"] > 0 for t in d["timing"].values())
    assert len(d["pairs"][1]["per_slice"]["flips"]) == 10


def test_thresholds_are_respected(gated):
    model, good, bad = gated
    x = gated_input(nz=6, lesion_slices=(2,))
    pkg = load_package(write_package(good.parent / "pkg2", "gated", {"onnx": good}))
    engines = [("torch", _torch_engine(model)), ("onnx-int8-like", OnnxEngine(bad))]
    strict = compare_engines(x, pkg, engines, spacing=(1, 1, 1))
    dice = strict.pairs[0].min_dice
    assert 0 < dice < 0.99 and not strict.passed
    loose = compare_engines(
        x, pkg, engines, spacing=(1, 1, 1), thresholds=Thresholds(dice_int8=dice - 1e-6)
    )
    assert loose.passed and loose.pairs[0].threshold == pytest.approx(dice - 1e-6)


def test_volume_input_through_the_package(gated, tmp_path):
    """A Volume-like goes through the pipeline's input preparation; engines from the package."""
    from inference.preprocess_input import ArrayVolume

    _, good, bad = gated
    pkg = load_package(write_package(tmp_path / "pkg", "gated", {"onnx": good, "onnx_int8": bad}))
    hu = (
        gated_input(nz=8, lesion_slices=(1, 2))[:, 0] * 2.0 - 1.0
    )  # window c=0, w=2 maps back to [0, 1]
    vol = ArrayVolume(hu.astype(np.float32), (3.0, 0.7, 0.7), np.eye(3))
    res = compare_engines(vol, pkg, ["torch", "onnx", "onnx-int8"])
    assert res.engines == ["onnx", "onnx-int8"] and any("torch" in w for w in res.warnings)
    p = res.pairs[0]
    assert p.threshold == 0.99 and not p.passed
    assert {res.to_original_z(z) for z in np.nonzero(p.slice_flips)[0]} <= {
        1,
        2,
    }  # head→feet canonical order
    assert res.spacing == pytest.approx((3.0, 0.7, 0.7))
    assert res.image.shape == (8, 32, 32) and res.image.dtype == np.uint8
    on_vol = res.labels_on_volume("onnx-int8")
    assert on_vol.shape == hu.shape and np.array_equal(on_vol, res.labels["onnx-int8"][::-1])
    assert (on_vol[1:3] == 2).any() and not (
        on_vol[3:] == 2
    ).any()  # lesion label where the blobs are


def test_postprocessed_masks(gated, tmp_path):
    """With post-processing, lesion components below the package's size limit are removed from
    every engine's mask before comparing: the perturbed engine's (small) lesion loss vanishes."""
    import json as _json

    from inference.preprocess_input import ArrayVolume

    _, good, bad = gated
    root = write_package(tmp_path / "pkg", "gated", {"onnx": good, "onnx_int8": bad})
    mj = _json.loads((root / "model.json").read_text())
    mj["postprocess"] = {"min_component_mm3": {"2": 1e6}}  # every lesion component is "too small"
    (root / "model.json").write_text(_json.dumps(mj))
    pkg = load_package(root)
    hu = gated_input(nz=8, lesion_slices=(1, 2))[:, 0] * 2.0 - 1.0
    vol = ArrayVolume(hu.astype(np.float32), (3.0, 0.7, 0.7), np.eye(3))
    raw = compare_engines(vol, pkg, ["onnx", "onnx-int8"])
    post = compare_engines(vol, pkg, ["onnx", "onnx-int8"], postprocess=True)
    assert not raw.passed and post.passed
    assert raw.pairs[0].logits_max_abs == post.pairs[0].logits_max_abs  # raw logits either way
    assert not (post.labels["onnx"] == 2).any() and (raw.labels["onnx"] == 2).any()
    d = post.to_dict()
    assert d["masks"] == "post-processed" and raw.to_dict()["masks"] == "raw argmax"
    assert d["postprocess"]["onnx"]["min_component_mm3"] == {"2": 1e6}


def test_cancel_and_bad_engines(gated, tmp_path):
    from inference.jobs import CancelToken

    model, good, _ = gated
    pkg = load_package(write_package(tmp_path / "pkg", "gated", {"onnx": good}))
    x = gated_input(nz=4)
    tok = CancelToken()
    tok.cancel()
    with pytest.raises(Cancelled):
        compare_engines(
            x,
            pkg,
            [("a", _torch_engine(model)), ("b", OnnxEngine(good))],
            spacing=(1, 1, 1),
            cancel=tok,
        )
    with pytest.raises(PackageError, match="at least two engines"):
        compare_engines(x, pkg, ["onnx", "onnx-int8"], spacing=(1, 1, 1))
    with pytest.raises(PackageError, match="returned shape"):
        compare_engines(x, pkg, [("a", OnnxEngine(good)), ("b", lambda x: x)], spacing=(1, 1, 1))


def test_torch_unet_package_parity(tmp_path):
    """TorchEngine vs OnnxEngine from a package with a (random) UNet2D: FP32 parity passes."""
    import torch

    from inference.preprocess_input import ArrayVolume

    net = tiny_unet()
    torch.save(net.state_dict(), tmp_path / "model.pt")
    onnx_path = export_onnx(net, tmp_path / "model.onnx", size=32)
    spec = {"architecture": "UNet2D", "args": net.config, "gradcam_target_layer": "decoder.1"}
    pkg = load_package(
        write_package(
            tmp_path / "pkg",
            "unet",
            {"onnx": onnx_path, "torch": tmp_path / "model.pt"},
            torch_spec=spec,
            divisible_by=4,
        ),
        verify=True,
    )
    rng = np.random.default_rng(1)
    vol = ArrayVolume(
        rng.uniform(-1, 1, (4, 30, 30)).astype(np.float32), (2.0, 1.0, 1.0), np.eye(3)
    )
    res = compare_engines(vol, pkg, ["torch", "onnx"])
    p = res.pairs[0]
    assert p.passed and p.logits_max_abs < 1e-4
    assert res.labels["torch"].shape == (4, 30, 30)  # padding (to 32) cropped


def test_shipped_model_fp32_parity():
    pkg = shipped_package()
    vol, _, _ = phantom_volume()
    engines = ["torch", "onnx"] + (["onnx-int8"] if pkg.has_int8 else [])
    res = compare_engines(vol, pkg, engines, batch_size=2)
    fp32 = res.pair("torch", "onnx")
    assert fp32.passed, fp32.reasons
    assert fp32.logits_max_abs < 1e-3
    assert res.labels["onnx"].any()  # the model finds lung on a chest phantom
