"""torch → ONNX export of a tiny U-Net in tmp_path, verified against PyTorch; a broken file is caught."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from inference.export import ParityError, export_onnx, parity_inputs, verify_onnx  # noqa: E402
from inference.networks import UNet2D  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    m = UNet2D(1, 4, base=4, depth=4)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding them is exercised
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 2.0)
        m.head.bias.copy_(torch.tensor([0.5, 0.0, 0.0, -0.5]))
    path = export_onnx(m.eval(), tmp_path_factory.mktemp("onnx") / "tiny.onnx")
    return m, path


def test_graph_has_named_dynamic_io(tiny) -> None:
    _, path = tiny
    g = onnx.load(str(path))
    (inp,), (out,) = g.graph.input, g.graph.output
    assert inp.name == "image" and out.name == "logits"
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims == ["N", 1, "H", "W"]
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["N", 4, "H", "W"]
    assert {n.op_type for n in g.graph.node}.isdisjoint({"BatchNormalization"})  # folded
    assert not (path.parent / (path.name + ".data")).exists()


def test_verify_several_sizes_and_batches(tiny) -> None:
    m, path = tiny
    res = verify_onnx(m, path, sizes=[(32, 32), (48, 80), (64, 64)], batches=[1, 3])
    assert len(res["cases"]) == 6
    assert res["max_abs_logit_diff"] < 1e-4
    assert all(v >= 0.999 for v in res["min_dice"].values())
    assert {tuple(c["size"]) for c in res["cases"]} == {(32, 32), (48, 80), (64, 64)}


def test_tampered_model_fails_loudly(tiny, tmp_path) -> None:
    m, path = tiny
    g = onnx.load(str(path))
    head = [i for i in g.graph.initializer if i.dims == [4]][-1]  # the head bias
    arr = onnx.numpy_helper.to_array(head).copy()
    arr[1] += 3.0
    head.CopyFrom(onnx.numpy_helper.from_array(arr, head.name))
    bad = tmp_path / "bad.onnx"
    onnx.save(g, str(bad))
    with pytest.raises(ParityError, match="disagrees with PyTorch"):
        verify_onnx(m, bad, sizes=[(32, 32)], batches=[1])


def test_parity_inputs_from_images() -> None:
    imgs = np.random.default_rng(0).random((2, 1, 40, 40), dtype=np.float32)
    x = parity_inputs(32, 48, 3, 1, seed=1, images=imgs)
    assert x.shape == (3, 1, 32, 48) and x.dtype == np.float32
