"""UNet2D shapes, module names (Grad-CAM target) and argument checks."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from inference.networks import UNet2D, build_network, count_parameters  # noqa: E402


@pytest.mark.parametrize("up", ["transpose", "bilinear"])
@pytest.mark.parametrize(("n", "c", "h", "w"), [(1, 1, 32, 32), (2, 3, 48, 80)])
def test_output_shape_matches_input(up: str, n: int, c: int, h: int, w: int) -> None:
    m = UNet2D(c, num_classes=4, base=4, depth=4, up=up).eval()
    with torch.no_grad():
        y = m(torch.zeros(n, c, h, w))
    assert y.shape == (n, 4, h, w)
    assert m.divisible_by == 16


def test_group_norm_and_depth() -> None:
    m = UNet2D(1, num_classes=3, base=4, depth=2, norm="group").eval()
    with torch.no_grad():
        assert m(torch.rand(1, 1, 12, 20)).shape == (1, 3, 12, 20)


def test_module_names_for_gradcam() -> None:
    m = UNet2D(1, 4, base=4, depth=4)
    names = dict(m.named_modules())
    for name in ("encoder.0", "bottleneck", "decoder.3", "head", "up.0"):
        assert name in names
    # decoder.3 is the full-resolution block: its output has `base` channels at input size
    feats = {}
    names["decoder.3"].register_forward_hook(lambda mod, i, o: feats.setdefault("d", o))
    m.eval()(torch.zeros(1, 1, 32, 32))
    assert feats["d"].shape == (1, 4, 32, 32)


def test_base16_parameter_count_and_build_network() -> None:
    m = build_network("UNet2D", {"in_channels": 1, "num_classes": 4, "base": 16, "depth": 4})
    assert 1_800_000 < count_parameters(m) < 2_100_000
    with pytest.raises(ValueError, match="unknown architecture"):
        build_network("ResNet", {})


@pytest.mark.parametrize("kw", [{"norm": "layer"}, {"up": "pixelshuffle"}, {"depth": 0}, {"num_classes": 1}])
def test_bad_arguments_are_named(kw: dict) -> None:
    with pytest.raises(ValueError):
        UNet2D(1, **{"num_classes": 4, "base": 4, **kw})
