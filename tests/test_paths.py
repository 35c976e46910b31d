"""Paths with spaces and non-ASCII characters, read-only folders and a full disk.

Scan, load, the ``scan`` / ``segment`` CLI and every export (PNG, NIfTI, DICOM SEG, PDF) work
under names like ``Études – 患者 01``; a read-only folder and a full disk give a clear
``ExportError`` (exit code 2 on the CLI) and leave no partial file. Read-only and full are real
when the tests run as root with ``mount`` allowed (a read-only / a filled tmpfs); otherwise the
full disk is simulated at the atomic writer's ``fsync`` and the read-only case is skipped.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.test_engines import band_package
from viewer.dicom import load_path, load_stack, scan
from viewer.dicom.synth import write_series
from viewer.errors import ExportError
from viewer.export import atomic
from viewer.export.nifti import read_nifti, write_nifti
from viewer.export.png import write_png
from viewer.export.report import write_report
from viewer.export.seg import SegmentInfo, write_seg

ROOT = Path(__file__).resolve().parents[1]
NAME = "Études – 患者 01 ü"
pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def series_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("paths") / f"{NAME} input" / "série 1"
    d.mkdir(parents=True)
    hu = np.full((4, 32, 32), -1000.0)
    hu[:, 8:24, 8:24] = 40.0
    write_series(d, hu, spacing=(2.0, 1.0, 1.0), file_names="tranche {:02d} é.dcm")
    return d


@pytest.fixture(scope="module")
def vol(series_dir):
    return load_path(series_dir)


def _labels(vol) -> np.ndarray:
    lab = np.zeros(vol.shape[:3], np.uint8)
    lab[:, 10:20, 10:20] = 1
    return lab


SEGS = [SegmentInfo(1, "Lésion 1", (255, 0, 0), algorithm_type="MANUAL")]


def _exporters(vol) -> dict[str, Callable[[Path], Path]]:
    lab = _labels(vol)
    rgb = np.zeros((32, 32, 3), np.uint8)
    return {
        "png": lambda d: write_png(d / f"key {NAME}.png", rgb),
        "nifti": lambda d: write_nifti(vol, d / f"volume {NAME}.nii.gz"),
        "seg": lambda d: write_seg(d / f"seg {NAME}.dcm", vol, lab, SEGS),
        "pdf": lambda d: write_report(
            d / f"rapport {NAME}.pdf", volume=vol, labels=lab, key_images=[]
        ),
    }


def test_scan_and_load_non_ascii_folder_and_file_names(series_dir, vol):
    res = scan(series_dir.parent)
    assert len(res.stacks) == 1 and not res.skipped
    assert all("é" in f for f in res.stacks[0].files)
    assert vol.shape == (4, 32, 32)
    assert all(NAME in f for f in vol.meta.source_files)


def test_zip_with_non_ascii_member_names(series_dir, tmp_path):
    z = tmp_path / f"{NAME}.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(series_dir.iterdir()):
            zf.write(p, f"dossier ü/{p.name}")
    res = scan(z)
    v = load_stack(res.stacks[0])
    assert v.shape == (4, 32, 32)
    assert all("dossier ü" in f for f in v.meta.source_files)


@pytest.mark.parametrize("kind", ["png", "nifti", "seg", "pdf"])
def test_exports_to_a_non_ascii_folder(vol, tmp_path, kind):
    out = tmp_path / f"Résultats {NAME}"
    path = _exporters(vol)[kind](out)
    assert path.is_file() and NAME in path.name
    assert sorted(p.name for p in out.iterdir()) == [path.name]  # no temporary left
    data = path.read_bytes()
    if kind == "png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
    elif kind == "nifti":
        arr, _ = read_nifti(path)
        assert arr.shape[:3] == (32, 32, 4) or arr.shape[:3] == (4, 32, 32)
    elif kind == "seg":
        assert pydicom.dcmread(path).Modality == "SEG"
    else:
        assert data[:5] == b"%PDF-"


def _cli(
    *args: str, env: dict[str, str] | None = None, timeout: int = 180
) -> subprocess.CompletedProcess:
    e = dict(os.environ, PYTHONPATH=str(ROOT), LC_ALL="C")  # a hostile locale too
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "viewer.cli", *args],
        cwd=ROOT,
        env=e,
        capture_output=True,
        timeout=timeout,
    )


def test_scan_cli_non_ascii_path_in_c_locale(series_dir):
    r = _cli("scan", "--json", str(series_dir))
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    doc = json.loads(r.stdout.decode("utf-8"))
    files = [
        f
        for p in doc["patients"]
        for s in p["studies"]
        for se in s["series"]
        for sk in se["stacks"]
        for f in sk["files"]
    ]
    assert len(files) == 4 and all(NAME in f for f in files)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("models")
    band_package(d / "band", (0.0, 0.5, 1.0))
    return d


def test_segment_cli_non_ascii_in_and_out(series_dir, models, tmp_path):
    out = tmp_path / f"sortie {NAME}"
    r = _cli(
        "segment",
        str(series_dir),
        "--model",
        "band",
        "--force",
        "--out",
        str(out),
        env={"CLINICAL_VIEWER_MODELS": str(models)},
    )
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    files = {p.name for p in out.rglob("*") if p.is_file()}
    assert "labels.nii.gz" in files and "stats.json" in files, files
    assert not [f for f in files if f.startswith(".") and ".tmp" in f]


# ------------------------------------------------------------------ read-only and full disks


def _mount_tmpfs(where: Path, opts: str) -> bool:
    if os.name != "posix" or os.geteuid() != 0:
        return False
    where.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], capture_output=True
    )
    return r.returncode == 0


def _umount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _fill(path: Path) -> None:
    """Write zeros to ``path`` until the filesystem is full (ENOSPC)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


@pytest.fixture
def read_only_dir(tmp_path) -> Iterator[Path]:
    d = tmp_path / f"lecture seule {NAME}"
    if not _mount_tmpfs(d, "ro,size=1m"):
        pytest.skip("needs root and mount to make a real read-only folder")
    try:
        yield d
    finally:
        _umount(d)


@pytest.fixture
def full_dir(tmp_path, monkeypatch) -> Iterator[Path]:
    """A folder on a really full filesystem (a filled 512 KiB tmpfs), or — without root — a
    folder whose writes fail with ENOSPC at fsync (as a full disk reports at write-back)."""
    d = tmp_path / f"disque plein {NAME}"
    if _mount_tmpfs(d, "size=512k"):
        _fill(d / "filler.bin")
        try:
            yield d
        finally:
            _umount(d)
        return
    d.mkdir()
    (d / "filler.bin").write_bytes(b"x")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "fsync", full)
    yield d


@pytest.mark.parametrize("kind", ["png", "nifti", "seg", "pdf"])
def test_export_to_read_only_folder(vol, read_only_dir, kind):
    with pytest.raises(ExportError, match="not writable") as ei:
        _exporters(vol)[kind](read_only_dir)
    assert NAME in str(ei.value)
    assert list(read_only_dir.iterdir()) == []


@pytest.mark.parametrize("kind", ["png", "nifti", "seg", "pdf"])
def test_export_to_full_disk(vol, full_dir, kind):
    with pytest.raises(ExportError, match="disk is full") as ei:
        _exporters(vol)[kind](full_dir)
    assert "nothing was written" in str(ei.value)
    assert sorted(p.name for p in full_dir.iterdir()) == ["filler.bin"]  # no partial file


def test_segment_cli_to_read_only_folder(series_dir, models, read_only_dir):
    r = _cli(
        "segment",
        str(series_dir),
        "--model",
        "band",
        "--force",
        "--out",
        str(read_only_dir / "out"),
        env={"CLINICAL_VIEWER_MODELS": str(models)},
    )
    err = r.stderr.decode("utf-8", errors="replace")
    assert r.returncode == 2, err
    assert "Traceback" not in err and ("not writable" in err or "Read-only" in err), err
    assert list(read_only_dir.iterdir()) == []


def test_segment_cli_to_full_disk(series_dir, models, tmp_path):
    d = tmp_path / f"plein {NAME}"
    if not _mount_tmpfs(d, "size=512k"):
        pytest.skip("needs root and mount for a real full disk in a subprocess")
    try:
        _fill(d / "filler.bin")
        r = _cli(
            "segment",
            str(series_dir),
            "--model",
            "band",
            "--force",
            "--out",
            str(d / "out"),
            env={"CLINICAL_VIEWER_MODELS": str(models)},
        )
        err = r.stderr.decode("utf-8", errors="replace")
        assert r.returncode == 2, err
        assert "Traceback" not in err and "disk is full" in err, err
        leftovers = [p for p in d.rglob("*") if p.is_file() and p.name != "filler.bin"]
        assert leftovers == [], leftovers
    finally:
        _umount(d)


def test_convert_cli_to_read_only_folder(series_dir, read_only_dir):
    r = _cli("convert", str(series_dir), "--out", str(read_only_dir / f"{NAME}.nii.gz"))
    err = r.stderr.decode("utf-8", errors="replace")
    assert r.returncode == 2, err
    assert "not writable" in err and "Traceback" not in err, err
    assert list(read_only_dir.iterdir()) == []
