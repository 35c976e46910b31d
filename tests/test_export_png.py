"""Key images: composition (window, labels, outlines, heatmap, calipers, square pixels) and PNG writing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from viewer.errors import ExportError
from viewer.export.png import Caliper, compose_key_image, encode_png, window_gray, write_png


def _chunks(data: bytes) -> list[bytes]:
    out, pos = [], 8
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        out.append(data[pos + 4:pos + 8])
        pos += 12 + n
    return out


def _plane() -> np.ndarray:
    y, x = np.mgrid[0:64, 0:80]
    return (-1000 + 25 * x + 0 * y).astype(np.int16)  # a HU ramp across columns


class TestWritePng:
    def test_full_resolution_rgb_order(self, tmp_path: Path) -> None:
        rng = np.random.default_rng(0)
        rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
        rgb[0, 0] = (255, 0, 0)
        p = write_png(tmp_path / "key.png", rgb)
        back = np.asarray(Image.open(p).convert("RGB"))
        assert back.shape == (37, 53, 3) and np.array_equal(back, rgb)
        assert tuple(back[0, 0]) == (255, 0, 0)  # red stays red (no BGR swap)
        assert _chunks(p.read_bytes()) == [b"IHDR", b"IDAT", b"IEND"]  # pixels only, no text metadata

    @pytest.mark.parametrize("bad", [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 2), np.uint8),
                                     np.zeros((0, 4, 3), np.uint8)])
    def test_bad_arrays(self, tmp_path: Path, bad: np.ndarray) -> None:
        with pytest.raises(ExportError, match="uint8"):
            write_png(tmp_path / "k.png", bad)
        assert list(tmp_path.iterdir()) == []

    def test_suffix(self, tmp_path: Path) -> None:
        with pytest.raises(ExportError, match=r"\.png"):
            write_png(tmp_path / "k.jpg", np.zeros((2, 2, 3), np.uint8))

    def test_grey_and_rgba(self) -> None:
        assert encode_png(np.zeros((3, 3), np.uint8))[:4] == b"\x89PNG"
        assert encode_png(np.zeros((3, 3, 4), np.uint8))[:4] == b"\x89PNG"


class TestCompose:
    def test_window_only(self) -> None:
        plane = _plane()
        img = compose_key_image(plane, window=(-600, 1500))
        assert img.shape == (64, 80, 3) and img.dtype == np.uint8
        assert np.array_equal(img[..., 0], window_gray(plane, (-600, 1500)))
        assert abs(int(img[0, 0, 0]) - (-1000 + 1350) * 255 / 1500) <= 1
        assert img[:, -1].min() == 255  # 975 HU is above the window

    def test_labels_fill_and_outline(self) -> None:
        plane = np.full((40, 40), -1350, np.int16)  # black in the lung window
        lab = np.zeros((40, 40), np.uint8)
        lab[10:30, 10:30] = 1
        img = compose_key_image(plane, labels=lab, colors={1: (0, 200, 0)}, alpha=0.5)
        assert tuple(img[20, 20]) == (0, 100, 0)  # 50 % green over black
        assert tuple(img[10, 20]) == (0, 200, 0)  # contour at full colour
        assert tuple(img[5, 5]) == (0, 0, 0)  # background untouched
        no_fill = compose_key_image(plane, labels=lab, colors={1: (0, 200, 0)}, alpha=0.0)
        assert tuple(no_fill[20, 20]) == (0, 0, 0) and tuple(no_fill[10, 20]) == (0, 200, 0)
        hidden = compose_key_image(plane, labels=lab, colors={2: (255, 0, 0)})
        assert not hidden.any()  # labels without a colour are not drawn

    def test_heatmap(self) -> None:
        plane = np.full((32, 32), -1350, np.int16)
        heat = np.zeros((32, 32), np.float32)
        heat[8:16, 8:16] = 1.0
        img = compose_key_image(plane, heatmap=heat, heatmap_alpha=1.0)
        r, g, b = (int(v) for v in img[10, 10])
        assert r > 100 and b < 50  # hot = red in jet, in RGB order
        assert not img[25, 25].any()

    def test_square_pixels_and_min_size(self) -> None:
        plane = np.zeros((20, 40), np.int16)
        assert compose_key_image(plane, pixel_spacing=(2.0, 1.0)).shape == (40, 40, 3)
        assert compose_key_image(plane, pixel_spacing=(1.0, 1.0), min_size=100).shape == (100, 200, 3)

    def test_calipers_and_caption(self) -> None:
        plane = np.full((100, 100), -1350, np.int16)
        img = compose_key_image(plane, calipers=[Caliper((50, 10), (50, 90), "", (255, 0, 0))])
        assert img[50, 50, 0] > 200 and img[50, 50, 1:].max() == 0 and not img[20, 50].any()
        cap = compose_key_image(plane, caption=["slice 12"])
        assert cap[:30, :80].any() and not cap[60:, :].any()

    def test_rgb_input_and_errors(self) -> None:
        rgb = np.zeros((10, 10, 3), np.uint8)
        out = compose_key_image(rgb, labels=np.ones((10, 10), np.uint8), colors={1: (255, 255, 255)}, alpha=1.0)
        assert out.min() == 255 and not rgb.any()
        with pytest.raises(ValueError, match="labels shape"):
            compose_key_image(np.zeros((10, 10)), labels=np.zeros((5, 5), np.uint8), colors={1: (1, 1, 1)})
        with pytest.raises(ValueError, match="plane must be"):
            compose_key_image(np.zeros((2, 10, 10)))
