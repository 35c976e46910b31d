"""PDF report: the text a reader needs is there (pdftotext), every page renders (pdftoppm), anonymised."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from viewer.anonymize import Anonymizer, identifiers_of, scan_for_identifiers
from viewer.errors import ExportError
from viewer.export.report import DISCLAIMER, build_report, write_report
from viewer.export.report_images import auto_key_images
from viewer.segstats import segment_statistics
from viewer.volume import Volume, VolumeMeta

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None,
                                reason="poppler-utils (pdftotext, pdftoppm) missing")

NAME, PID, BIRTH = "Zyxwvutsky^Quintessa", "PID-8831-XQ", "19431127"
# realistic full-length UIDs (a short UID could be a prefix of a replacement UID by chance)
STUDY_UID = "1.3.6.1.4.1.14519.5.2.1.6655.2359.104855313699639828167809534834"
SERIES_UID = "1.3.6.1.4.1.14519.5.2.1.6655.2359.207154000962366030572161098311"
INFO = {1: {"name": "Right lung", "color": (230, 96, 60)}, 2: {"name": "Left lung", "color": (60, 140, 230)},
        3: {"name": "Lesion", "color": (250, 220, 40)}}
MODEL = {"name": "lungseg-unet", "version": "1.2.0", "engine": "onnx", "provider": "CPUExecutionProvider",
         "sha256": "9f2c1e0d4b5a69788abcdef0123456789abcdef0123456789abcdef01234567"}
PARITY = {"passed": True, "engines": ["torch", "onnx"], "reference": "torch",
          "thresholds": {"dice_fp32": 0.999, "dice_int8": 0.99},
          "pairs": [{"a": "torch", "b": "onnx", "passed": True, "min_dice": 1.0, "flips": 0, "flip_fraction": 0.0,
                     "labels": [{"name": "Right lung", "dice": 1.0}], "logits_max_abs": 3e-6, "reasons": []}]}


def phantom(nz: int = 16, n: int = 96) -> tuple[Volume, np.ndarray]:
    """A crude chest: body ellipse (40 HU), two lungs (-850 HU) and a 'lesion' sphere (30 HU)."""
    z, y, x = np.mgrid[0:nz, 0:n, 0:n].astype(np.float32)
    body = ((y - n / 2) / (0.38 * n)) ** 2 + ((x - n / 2) / (0.46 * n)) ** 2 <= 1
    zz = np.abs(z - nz / 2) / (0.45 * nz)
    right = ((y - n / 2) / (0.3 * n)) ** 2 + ((x - 0.3 * n) / (0.15 * n)) ** 2 + zz ** 2 <= 1
    left = ((y - n / 2) / (0.3 * n)) ** 2 + ((x - 0.7 * n) / (0.15 * n)) ** 2 + zz ** 2 <= 1
    lesion = ((z - nz / 2) * 4) ** 2 + (y - 0.45 * n) ** 2 + (x - 0.3 * n) ** 2 <= (0.06 * n) ** 2
    hu = np.where(body, 40, -1000).astype(np.int16)
    hu[right | left] = -850
    hu[lesion] = 30
    lab = np.zeros(hu.shape, np.uint8)
    lab[right], lab[left], lab[lesion] = 1, 2, 3
    meta = VolumeMeta(modality="CT", patient_name=NAME, patient_id=PID, patient_birth_date=BIRTH, patient_sex="F",
                      study_instance_uid=STUDY_UID, series_instance_uid=SERIES_UID,
                      study_date="20240305", study_description="CT chest Zyxwvutsky", series_description="Thorax 1mm",
                      series_number=3, source_files=[f"/data/{NAME}/img{k}.dcm" for k in range(nz)])
    return Volume(hu, (4.0, 3.0, 3.0), meta=meta, warnings=[f"slice gap at /data/{NAME}/img7.dcm"]), lab


def pdf_text(path: Path, page: int | None = None) -> str:
    args = ["pdftotext", "-layout"] + (["-f", str(page), "-l", str(page)] if page else []) + [str(path), "-"]
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=60).stdout


def page_count(path: Path) -> int:
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"Pages:\s+(\d+)", info).group(1))


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, Volume, np.ndarray, dict]:
    vol, lab = phantom()
    stats = segment_statistics(lab, vol.voxels, vol.spacing, label_names={k: v["name"] for k, v in INFO.items()})
    heat = np.zeros(vol.shape[1:], np.float32)
    heat[30:50, 20:40] = 1.0
    out = tmp_path_factory.mktemp("rep") / "report.pdf"
    write_report(out, volume=vol, labels=lab, stats=stats, labels_info=INFO, model_info=MODEL,
                 domain_warnings=["Slice thickness 4.0 mm is outside the training range"], parity=PARITY,
                 gradcam={"slice": 8, "heatmap": heat, "method": "Grad-CAM", "target": "Lesion", "layer": "up4"},
                 measurements=[{"kind": "ruler", "slice": 8, "label": "long axis", "length_mm": 17.25}],
                 reader="Dr <Ada> & Reader", review_state="edited, not signed",
                 ai_vs_final={1: (900.0, 850.5), "Lesion": {"ai_ml": 1.0, "final_ml": 1.5}})
    return out, vol, lab, stats


class TestReportContent:
    def test_text(self, report) -> None:
        path, vol, lab, stats = report
        text = pdf_text(path)
        flat = " ".join(text.split())
        for needle in ("AI segmentation report", "Zyxwvutsky Quintessa", PID, "1943-11-27", "2024-03-05",
                       "Thorax 1mm (#3)", "lungseg-unet", "1.2.0", "9f2c1e0d4b5a6978", "onnx / CPUExecutionProvider",
                       "Dr <Ada> & Reader", "edited, not signed", "outside the training range", "Verdict: PASS",
                       "torch vs onnx", "Right lung", "Left lung", "Lesion", "Grad-CAM", "layer: up4", "long axis",
                       "length 17.2 mm", "Key images", "largest lung area", "slice gap at"):
            assert needle in flat, needle
        right = stats["labels"][0]
        assert f"{right['volume_ml']:.2f}" in flat
        assert "900.00" in flat and "850.50" in flat and "-49.50 mL" in flat
        comp = stats["lesions"]["3"]["components"][0]
        assert f"{comp['longest_axial_diameter_mm']:.1f}" in flat
        assert f"{comp['slice_index'] + 1} / {vol.shape[0]}" in flat

    def test_disclaimer_on_every_page(self, report) -> None:
        path = report[0]
        n = page_count(path)
        assert n >= 2
        for p in range(1, n + 1):
            text = " ".join(pdf_text(path, p).split())
            assert DISCLAIMER in text and f"Page {p} of {n}" in text

    def test_pages_render(self, report, tmp_path: Path) -> None:
        path = report[0]
        subprocess.run(["pdftoppm", "-r", "40", "-png", str(path), str(tmp_path / "p")], check=True, timeout=120)
        pngs = sorted(tmp_path.glob("p-*.png"))
        assert len(pngs) == page_count(path)
        for png in pngs:
            a = np.asarray(Image.open(png).convert("RGB"))
            assert a.shape[0] > a.shape[1] > 200  # portrait A4
            assert (a < 128).mean() > 0.005  # something is printed
        # key images are real pictures: the page with them has many colours
        colours = max(len(np.unique(np.asarray(Image.open(p).convert("RGB")).reshape(-1, 3), axis=0)) for p in pngs)
        assert colours > 500


class TestAnonymisedReport:
    def test_no_identifiers(self, tmp_path: Path) -> None:
        vol, lab = phantom(nz=10, n=64)
        anon = Anonymizer()
        out = write_report(tmp_path / "r.pdf", volume=vol, labels=lab, labels_info=INFO, model_info=MODEL,
                           domain_warnings=[f"odd header in /data/{NAME}/x.dcm for {PID}"], anonymize=True,
                           anonymizer=anon, reader="Dr Reader")
        idents = identifiers_of(patient_name=NAME, patient_id=PID, birth_date=BIRTH,
                                extra=["CT chest", "Thorax 1mm", "2024-03-05", "20240305",
                                       vol.meta.study_instance_uid, vol.meta.series_instance_uid])
        text = pdf_text(out)
        assert scan_for_identifiers(text.encode(), idents) == []
        assert scan_for_identifiers(" ".join(text.split()).encode(), idents) == []
        assert scan_for_identifiers(out.read_bytes(), idents) == []
        flat = "".join(text.split())
        assert "anonymised" in flat and anon.uid_map(vol.meta.series_instance_uid) in flat
        assert "[pathremoved]" in flat and "[removed]" in flat  # the warning text was cleaned, not dropped
        assert "slice" in flat and "/10" in flat  # "k/n" slice numbers are not taken for paths
        # the same report without anonymisation does show them (the scan can fail)
        plain = pdf_text(write_report(tmp_path / "p.pdf", volume=vol, labels=lab, labels_info=INFO))
        assert scan_for_identifiers(plain.encode(), idents)


class TestReportInputs:
    def test_label_cautions_from_the_result(self, tmp_path: Path) -> None:
        """A model package's label caution (e.g. lesion not validated) is printed with the checks."""
        from types import SimpleNamespace

        vol, lab = phantom(nz=8, n=48)
        res = SimpleNamespace(labels=lab, model={"name": "m", "version": "1"}, engine={}, domain_warnings=[],
                              label_names={1: "Right lung", 3: "Lesion"}, label_colors={},
                              caution_lines=lambda: ["Lesion: Not validated on real CT; review every lesion."])
        flat = " ".join(pdf_text(write_report(tmp_path / "c.pdf", volume=vol, result=res)).split())
        assert "Model label cautions" in flat and "Lesion: Not validated on real CT; review every lesion." in flat
        none = " ".join(pdf_text(write_report(tmp_path / "n.pdf", volume=vol, result=res, label_cautions=[])).split())
        assert "Model label cautions" not in none

    def test_minimal_and_computed_stats(self) -> None:
        vol, lab = phantom(nz=8, n=48)
        pdf = build_report(volume=vol, labels=lab)
        assert pdf[:5] == b"%PDF-" and pdf.rstrip().endswith(b"%%EOF")

    def test_progress_and_cancel(self, tmp_path: Path) -> None:
        from viewer.errors import Cancelled

        vol, lab = phantom(nz=8, n=48)
        calls: list[tuple[int, int]] = []
        build_report(volume=vol, labels=lab, progress=lambda d, t, m: calls.append((d, t)))
        assert calls[0] == (0, 4) and calls[-1] == (4, 4)
        with pytest.raises(Cancelled):
            write_report(tmp_path / "r.pdf", volume=vol, labels=lab, cancel=lambda: True)
        assert not (tmp_path / "r.pdf").exists()

    def test_wide_figure_and_given_key_images(self, tmp_path: Path) -> None:
        vol, lab = phantom(nz=8, n=48)
        wide = np.full((60, 300, 3), 90, np.uint8)
        out = write_report(tmp_path / "w.pdf", volume=vol, labels=lab, key_images=[("Worst slice: A | B", wide)])
        assert "Worst slice: A | B" in " ".join(pdf_text(out).split())

    def test_given_key_images(self, tmp_path: Path) -> None:
        vol, lab = phantom(nz=8, n=48)
        img = np.zeros((50, 80, 3), np.uint8)
        img[:, :40] = (255, 0, 0)
        out = write_report(tmp_path / "k.pdf", volume=vol, labels=lab, key_images=[("My chosen view", img, "a note")])
        flat = " ".join(pdf_text(out).split())
        assert "My chosen view" in flat and "a note" in flat and "largest lung area" not in flat

    def test_rgb_volume(self) -> None:
        vol = Volume(np.zeros((2, 16, 16, 3), np.uint8), (1, 1, 1), meta=VolumeMeta(modality="OT"))
        assert build_report(volume=vol, labels=np.zeros((2, 16, 16), np.uint8))[:5] == b"%PDF-"

    def test_shape_mismatch(self) -> None:
        vol, _ = phantom(nz=8, n=48)
        with pytest.raises(ValueError, match="does not match the volume"):
            build_report(volume=vol, labels=np.zeros((2, 2, 2), np.uint8))

    def test_unwritable_target(self, tmp_path: Path) -> None:
        vol, lab = phantom(nz=8, n=48)
        (tmp_path / "file").write_text("x")
        with pytest.raises(ExportError, match="file"):
            write_report(tmp_path / "file" / "r.pdf", volume=vol, labels=lab)


class TestAutoKeyImages:
    def test_selection(self) -> None:
        vol, lab = phantom()
        stats = segment_statistics(lab, vol.voxels, vol.spacing, label_names={k: v["name"] for k, v in INFO.items()})
        images = auto_key_images(vol, lab, labels_info=INFO, stats=stats)
        titles = [k.title for k in images]
        area = ((lab == 1) | (lab == 2)).sum(axis=(1, 2))
        assert titles[0].startswith(f"Axial slice {int(np.argmax(area)) + 1}/16") and "Coronal" in titles[1]
        assert len(images) == 2 + len(stats["lesions"]["3"]["components"])
        lesion_img = images[2].rgb
        assert ((lesion_img == (250, 220, 40)).all(axis=2)).any()  # lesion outline in its colour
        assert all(k.rgb.dtype == np.uint8 and min(k.rgb.shape[:2]) >= 384 for k in images)

    def test_specks_get_no_key_image_but_are_listed(self) -> None:
        from viewer.export.report_sections import lesion_rows

        vol, lab = phantom()
        lab[2, 5, 80] = 3  # a one-voxel "lesion" far from the real one
        stats = segment_statistics(lab, vol.voxels, vol.spacing, label_names={k: v["name"] for k, v in INFO.items()})
        assert stats["lesions"]["3"]["count"] == 2
        images = auto_key_images(vol, lab, labels_info=INFO, stats=stats, coronal=False, min_lesion_mm=5.0)
        assert len(images) == 2  # largest lung slice + the real lesion only
        rows, note = lesion_rows(stats, vol.shape[0], str)
        assert len(rows) == 2 and note == ""
        rows, note = lesion_rows(stats, vol.shape[0], str, max_rows=1)
        assert len(rows) == 1 and note.startswith("1 smaller component(s) not listed")

    def test_empty_labels(self) -> None:
        vol, lab = phantom(nz=8, n=48)
        assert auto_key_images(vol, np.zeros_like(lab), labels_info=INFO) == []
