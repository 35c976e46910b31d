"""Seeded mutation engine for DICOM input (tests and ``bench/fuzz_dicom.py``). No Qt.

Seeds are real DICOM files: small synthetic series written by :mod:`viewer.dicom.synth` in every
encodable transfer syntax, a multi-frame file, and pydicom's bundled test files (read from the
installed package folder, never downloaded). A *case* is a small folder (or zip) holding one
seed series where one or more files are mutated:

* byte level: truncation, flipped bytes, inserted / deleted bytes, rewritten element lengths,
  rewritten VRs;
* header level (parse with pydicom, change, write back): absurd Rows / Columns /
  NumberOfFrames / BitsAllocated / BitsStored / SamplesPerPixel, missing pixel data, lying
  transfer syntaxes (compressed syntax on native data and native on compressed), huge / NaN / inf
  RescaleSlope / RescaleIntercept, PixelSpacing 0 / negative / NaN, degenerate IOP (zero vector,
  non-orthogonal, NaN), duplicate IPPs, NaN IPPs, wrong-VR values;
* archives: zip bombs (one member inflating to GiB), zips with thousands of entries, members
  named with path traversal (``../../x.dcm``, absolute names).

:func:`run_case` feeds a case to ``scan`` and ``load_stack`` and classifies the outcome; the
harness (:class:`Runner`) runs cases in a forked worker process with a per-case deadline and a
per-case peak-memory measurement, restarting the worker after a hang or a memory spike.
"""

from __future__ import annotations

import io
import math
import multiprocessing as mp
import os
import random
import resource
import shutil
import struct
import tempfile
import time
import traceback
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Case",
    "Outcome",
    "Runner",
    "build_seeds",
    "make_case",
    "run_case",
    "MUTATORS",
    "ARCHIVE_MUTATORS",
    "PYDICOM_TEST_FILES",
]

PYDICOM_TEST_FILES = (
    "CT_small.dcm",
    "MR_small.dcm",
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_padded.dcm",
    "JPEG2000.dcm",
    "JPGExtended.dcm",
    "SC_rgb_small_odd.dcm",
    "SC_rgb_rle_2frame.dcm",
    "SC_ybr_full_422_uncompressed.dcm",
    "image_dfl.dcm",
    "rtdose_1frame.dcm",
    "liver_1frame.dcm",
    "no_meta.dcm",
    "ExplVR_BigEnd.dcm",
    "emri_small.dcm",
)

# ------------------------------------------------------------------ seeds


@dataclass
class Seed:
    """One seed: a named list of (file name, bytes); several files form a series."""

    name: str
    files: list[tuple[str, bytes]]


def _pydicom_test_dir() -> Path:
    import pydicom

    return Path(pydicom.__file__).parent / "data" / "test_files"


def build_seeds(work: Path, *, shared_data: Path | None = None, max_shared: int = 20) -> list[Seed]:
    """Seeds: synthetic series in every encodable syntax, a multi-frame file, pydicom's bundled
    test files, and (when given) up to ``max_shared`` files of one series of ``shared_data``."""
    from viewer.dicom.synth import encodable_transfer_syntaxes, write_multiframe, write_series

    rng = np.random.default_rng(7)
    hu = (rng.normal(0, 300, size=(4, 32, 32))).astype(np.int16).astype(np.float64)
    seeds: list[Seed] = []
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    native = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian]
    for ts in native + list(encodable_transfer_syntaxes()):
        if str(ts) == "1.2.840.10008.1.2.4.70":
            continue  # needs SimpleITK/GDCM, slow to import; covered by the pydicom JPEG files
        d = work / f"synth_{ts}"
        d.mkdir(parents=True, exist_ok=True)
        paths = write_series(d, hu, spacing=(2.0, 0.7, 0.7), transfer_syntax=ts, uid_seed=str(ts))
        seeds.append(Seed(f"synth-{ts.name}", [(p.name, p.read_bytes()) for p in paths]))
    d = work / "synth_mf"
    d.mkdir(parents=True, exist_ok=True)
    mf = write_multiframe(d / "mf.dcm", hu, spacing=(2.0, 0.7, 0.7), uid_seed="mf")
    seeds.append(Seed("synth-multiframe", [(mf.name, mf.read_bytes())]))
    tdir = _pydicom_test_dir()
    for name in PYDICOM_TEST_FILES:
        p = tdir / name
        if p.is_file():
            seeds.append(Seed(f"pydicom-{name}", [(name, p.read_bytes())]))
    if shared_data is not None and shared_data.is_dir():
        files = sorted(f for f in shared_data.rglob("*") if f.is_file() and f.suffix != ".md")
        picked = []
        for f in files:
            if f.stat().st_size < 4 << 20:
                with open(f, "rb") as fh:
                    if fh.read(132)[128:132] == b"DICM":
                        picked.append(f)
            if len(picked) >= max_shared:
                break
        if picked:
            seeds.append(
                Seed(
                    "shared-data", [(f"s{i:03d}.dcm", f.read_bytes()) for i, f in enumerate(picked)]
                )
            )
    return seeds


# ------------------------------------------------------------------ mutators (bytes -> bytes)


def _ds(data: bytes) -> Any:
    import pydicom

    return pydicom.dcmread(io.BytesIO(data), force=True)


def _write(ds: Any) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=False)
    return buf.getvalue()


def m_truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(0, max(1, len(data)))]


def m_flip(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice((1, 2, 8, 64))):
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def m_flip_header(data: bytes, rng: random.Random) -> bytes:
    """Flip bytes in the first 1 KiB, where the tags, VRs and lengths are."""
    b = bytearray(data)
    for _ in range(rng.choice((1, 3, 10))):
        i = rng.randrange(min(len(b), 1024))
        b[i] = rng.randrange(256)
    return bytes(b)


def m_insert_delete(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data))
    if rng.random() < 0.5:
        return data[:i] + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9))) + data[i:]
    return data[:i] + data[i + rng.randrange(1, 9) :]


def m_length(data: bytes, rng: random.Random) -> bytes:
    """Overwrite a 16- or 32-bit little-endian length-like field after a plausible VR."""
    b = bytearray(data)
    vrs = [m.start() for m in _vr_positions(data)]
    if not vrs:
        return m_flip_header(data, rng)
    i = rng.choice(vrs)
    val = rng.choice((0, 1, 0xFFFF, 0xFFFFFFFF, 0x7FFFFFFF, len(data) * 4, rng.randrange(1 << 16)))
    if data[i : i + 2] in (b"OB", b"OW", b"SQ", b"UN", b"UT", b"OF", b"UC", b"UR", b"OD", b"OL"):
        b[i + 4 : i + 8] = struct.pack("<I", val & 0xFFFFFFFF)
    else:
        b[i + 2 : i + 4] = struct.pack("<H", val & 0xFFFF)
    return bytes(b)


def m_vr(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    vrs = [m.start() for m in _vr_positions(data)]
    if not vrs:
        return m_flip_header(data, rng)
    i = rng.choice(vrs)
    b[i : i + 2] = rng.choice((b"SQ", b"OB", b"US", b"FD", b"UN", b"XX", b"DS", b"AT"))
    return bytes(b)


def _vr_positions(data: bytes):
    import re

    return re.finditer(
        rb"(?<=[\x00-\xff]{4})(?:AE|AS|CS|DA|DS|FD|FL|IS|LO|OB|OW|PN|SH|SQ|UI|UL|US|UN|TM|LT|ST)",
        data[:4096],
    )


def _hdr(mut):
    """Header-level mutator: parse, change, write back (falls back to a byte flip if unparsable)."""

    def run(data: bytes, rng: random.Random) -> bytes:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = _ds(data)
                mut(ds, rng)
                return _write(ds)
        except Exception:  # noqa: BLE001 - an unparsable seed gets a byte mutation instead
            return m_flip(data, rng)

    run.__name__ = mut.__name__
    return run


BIG = (0, 1, 2, 3, 7, 65535, 65536, 100000, 2**31 - 1, 2**32 - 1)


@_hdr
def m_rows_cols(ds: Any, rng: random.Random) -> None:
    ds.Rows = rng.choice([v for v in BIG if v <= 65535])
    ds.Columns = rng.choice([v for v in BIG if v <= 65535])


@_hdr
def m_frames(ds: Any, rng: random.Random) -> None:
    ds.NumberOfFrames = rng.choice((0, 2, 10000, 10**6, 2**31 - 1, -1))


@_hdr
def m_bits(ds: Any, rng: random.Random) -> None:
    ds.BitsAllocated = rng.choice((0, 1, 7, 12, 24, 32, 64, 65535))
    if rng.random() < 0.5:
        ds.BitsStored = rng.choice((0, 1, 17, 40, 65535))
    if rng.random() < 0.3:
        ds.SamplesPerPixel = rng.choice((0, 2, 3, 4, 255))


@_hdr
def m_no_pixels(ds: Any, rng: random.Random) -> None:
    for tag in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
        if tag in ds:
            del ds[tag]


@_hdr
def m_lying_syntax(ds: Any, rng: random.Random) -> None:
    native = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2")
    compressed = (
        "1.2.840.10008.1.2.5",
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.1.2.4.70",
        "1.2.840.10008.1.2.4.80",
        "1.2.840.10008.1.2.4.90",
        "1.2.840.10008.1.2.4.201",
        "1.2.840.10008.1.2.1.99",
        "9.9.9.9",
        "",
    )
    ts = str(ds.file_meta.get("TransferSyntaxUID", "")) if hasattr(ds, "file_meta") else ""
    new = rng.choice(compressed if ts in native else native + compressed[:3])
    ds.file_meta.TransferSyntaxUID = new


@_hdr
def m_rescale(ds: Any, rng: random.Random) -> None:
    vals = ("NaN", "inf", "-inf", "1e308", "-1e308", "0", "1e-300", "3.4e38", "abc", "")
    ds.RescaleSlope = rng.choice(vals)
    if rng.random() < 0.6:
        ds.RescaleIntercept = rng.choice(vals)


@_hdr
def m_spacing(ds: Any, rng: random.Random) -> None:
    v = rng.choice(("0", "-1", "NaN", "inf", "1e30", "1e-30"))
    ds.PixelSpacing = [v, rng.choice((v, "1"))]
    if rng.random() < 0.4:
        ds.SliceThickness = rng.choice(("0", "-5", "NaN"))


@_hdr
def m_iop(ds: Any, rng: random.Random) -> None:
    ds.ImageOrientationPatient = rng.choice(
        (
            ["0", "0", "0", "0", "0", "0"],
            ["1", "0", "0", "1", "0", "0"],
            ["1", "0", "0", "0.7", "0.7", "0"],
            ["NaN", "0", "0", "0", "1", "0"],
            ["1", "0", "0"],
            ["1e300", "0", "0", "0", "1e300", "0"],
        )
    )


@_hdr
def m_ipp(ds: Any, rng: random.Random) -> None:
    ds.ImagePositionPatient = rng.choice(
        (
            ["0", "0", "0"],
            ["NaN", "0", "0"],
            ["inf", "-inf", "0"],
            ["1e308", "0", "1e308"],
            ["1", "2"],
        )
    )


@_hdr
def m_wrong_vr_value(ds: Any, rng: random.Random) -> None:
    from pydicom.dataelem import DataElement

    tag = rng.choice((0x00280010, 0x00280011, 0x00281053, 0x00200032, 0x00280030, 0x00080060))
    ds[tag] = DataElement(
        tag, rng.choice(("UN", "OB", "LO", "SQ" if False else "UT")), b"\xff\xfe garbage"
    )


MUTATORS = {
    "truncate": m_truncate,
    "flip": m_flip,
    "flip_header": m_flip_header,
    "insert_delete": m_insert_delete,
    "length": m_length,
    "vr": m_vr,
    "rows_cols": m_rows_cols,
    "frames": m_frames,
    "bits": m_bits,
    "no_pixels": m_no_pixels,
    "lying_syntax": m_lying_syntax,
    "rescale": m_rescale,
    "spacing": m_spacing,
    "iop": m_iop,
    "ipp": m_ipp,
    "wrong_vr_value": m_wrong_vr_value,
}

# ------------------------------------------------------------------ cases


@dataclass
class Case:
    """A folder of files (or one zip) to scan and load; ``kind`` names the mutation(s)."""

    case_id: int
    kind: str
    seed: str
    files: list[tuple[str, bytes]] = field(default_factory=list)
    zip_spec: dict[str, Any] | None = None  # archive cases are built at materialisation


def _dup_ipp(files: list[tuple[str, bytes]], rng: random.Random) -> list[tuple[str, bytes]]:
    """All slices at one position (duplicate IPPs)."""
    out = []
    for name, data in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = _ds(data)
                if "ImagePositionPatient" in ds:
                    ds.ImagePositionPatient = ["0", "0", "0"]
                out.append((name, _write(ds)))
        except Exception:  # noqa: BLE001
            out.append((name, data))
    return out


ARCHIVE_MUTATORS = ("zip_bomb", "zip_many", "zip_traversal", "zip_corrupt")


def make_case(case_id: int, seeds: list[Seed], rng: random.Random) -> Case:
    """One random case: a seed series with 1..all files mutated (1..3 mutations each), a
    duplicate-IPP series, or an archive case."""
    seed = rng.choice(seeds)
    r = rng.random()
    if r < 0.04:
        kind = rng.choice(ARCHIVE_MUTATORS)
        return Case(
            case_id, kind, seed.name, list(seed.files), {"kind": kind, "seed": rng.random()}
        )
    if r < 0.07 and len(seed.files) > 1:
        return Case(case_id, "dup_ipp", seed.name, _dup_ipp(seed.files, rng))
    files = list(seed.files)
    n_mut = rng.choice((1, 1, 1, len(files)))
    idx = rng.sample(range(len(files)), min(n_mut, len(files)))
    kinds = []
    for i in idx:
        name, data = files[i]
        for _ in range(rng.choice((1, 1, 2, 3))):
            k = rng.choice(list(MUTATORS))
            kinds.append(k)
            if data:
                data = MUTATORS[k](data, rng)
        files[i] = (name, data)
    return Case(case_id, "+".join(sorted(set(kinds))), seed.name, files)


def _write_zip(case: Case, path: Path) -> None:
    kind = case.zip_spec["kind"] if case.zip_spec else ""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        if kind == "zip_bomb":
            # ~2 GiB of zeros compresses to ~2 MiB; named like a DICOM file, with a DICOM start
            name, data = case.files[0]
            with zf.open("bomb.dcm", "w", force_zip64=True) as w:
                w.write(data[:132])
                chunk = bytes(1 << 24)
                for _ in range(int(case.zip_spec.get("bomb_mib", 2048)) // 16):
                    w.write(chunk)
            for name, data in case.files:
                zf.writestr(name, data)
        elif kind == "zip_many":
            for i in range(3000):
                zf.writestr(f"junk/{i:05d}.dcm", b"x" * (i % 7))
            for name, data in case.files:
                zf.writestr(name, data)
        elif kind == "zip_traversal":
            for i, (_name, data) in enumerate(case.files):
                evil = ("../../" * 4 + f"evil{i}.dcm") if i % 2 == 0 else f"/tmp/evil_abs_{i}.dcm"
                zf.writestr(evil, data)
        else:
            for name, data in case.files:
                zf.writestr(name, data)
    if kind == "zip_corrupt":
        b = bytearray(path.read_bytes())
        for i in range(len(b) // 3, len(b) // 3 + 64):
            b[i] ^= 0x5A
        path.write_bytes(bytes(b[: len(b) * 3 // 4]))


def materialise(case: Case, root: Path) -> Path:
    """Write ``case`` under ``root`` and return the path to scan."""
    d = root / f"case{case.case_id:06d}"
    d.mkdir(parents=True)
    if case.zip_spec:
        _write_zip(case, d / "archive.zip")
        return d
    for name, data in case.files:
        (d / name).write_bytes(data)
    return d


# ------------------------------------------------------------------ running one case


@dataclass
class Outcome:
    """How a case ended. ``status``: loaded | refused | nothing | FAIL-<why>."""

    case_id: int
    kind: str
    seed: str
    status: str
    detail: str = ""
    seconds: float = 0.0
    peak_mb: float = 0.0  # growth of the worker's peak RSS during this case


def _accounted(result: Any, case_dir: Path) -> str:
    """'' when every input file is in a stack, the skipped list or the non-image list."""
    seen: set[str] = set()
    for sk in result.stacks:
        for f in sk.frames:
            seen.add(f.file.ref.path if f.file.ref.member is None else str(f.file.ref))
    seen |= {str(s.path) for s in result.skipped}
    seen |= {str(n.path) for n in result.non_image}
    missing = []
    for p in case_dir.iterdir():
        if p.suffix == ".zip":
            continue
        if str(p) not in seen:
            missing.append(p.name)
    return f"files neither loaded nor skipped: {missing}" if missing else ""


def run_case(case_dir: Path, *, max_bytes: int = 2 << 30) -> tuple[str, str]:
    """Scan ``case_dir`` and load every stack. Returns ``(status, detail)``; never raises for an
    expected outcome. Only ``DicomError`` may escape a load; anything else is a FAIL."""
    from viewer.dicom import load_stack, scan
    from viewer.errors import DicomError

    try:
        result = scan(case_dir)
    except DicomError as exc:
        return "refused", f"scan: {exc}"[:300]
    missing = _accounted(result, case_dir)
    if missing:
        return "FAIL-unaccounted", missing
    loaded, refused = 0, []
    for sk in result.stacks:
        try:
            vol = load_stack(sk, max_bytes=max_bytes)
        except DicomError as exc:
            refused.append(str(exc)[:200])
            continue
        v = vol.voxels
        if v.shape[0] < 1 or v.ndim not in (3, 4):
            return "FAIL-shape", f"volume shape {v.shape}"
        sp = np.asarray(vol.spacing, dtype=float)
        if not np.all(np.isfinite(sp)) or np.any(sp <= 0):
            return "FAIL-spacing", f"spacing {vol.spacing} (must be finite and > 0)"
        if not np.all(np.isfinite(np.asarray(vol.direction, dtype=float))):
            return "FAIL-direction", f"direction {vol.direction}"
        if v.dtype.kind == "f" and not np.all(np.isfinite(v)):
            return "FAIL-nonfinite", f"non-finite voxels with dtype {v.dtype}"
        loaded += 1
    if loaded:
        return "loaded", f"{loaded} stack(s), {len(result.skipped)} skipped"
    if refused:
        return "refused", refused[0]
    return "nothing", (result.skipped[0].reason if result.skipped else "no stacks")[:200]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _worker(conn: Any, mem_limit: int, quiet: bool) -> None:
    import logging
    import warnings

    warnings.simplefilter("ignore")  # pydicom warns on every malformed value
    logging.disable(logging.CRITICAL)
    if quiet:  # decoder libraries (e.g. Rust panics in pylibjpeg-rle) write to fd 2 directly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
    if mem_limit:  # address-space cap above what the (forked) worker already maps
        with open("/proc/self/statm") as f:
            mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        cap = mapped + mem_limit
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    while True:
        msg = conn.recv()
        if msg is None:
            return
        case_dir = Path(msg)
        before = _peak_rss_mb()
        t0 = time.perf_counter()
        try:
            status, detail = run_case(case_dir)
        except BaseException as exc:  # noqa: BLE001 - the harness records every escape
            status = f"FAIL-{type(exc).__name__}"
            detail = "".join(traceback.format_exception(exc))[-1500:]
        conn.send((status, detail, time.perf_counter() - t0, _peak_rss_mb() - before))


class Runner:
    """Runs cases in a forked worker with a deadline (``timeout`` s) and a peak-RSS bound
    (``max_peak_mb``, measured per case as growth of the worker's high-water mark); a worker
    that hangs or whose high-water mark grew is replaced."""

    def __init__(
        self,
        *,
        timeout: float = 20.0,
        max_peak_mb: float = 1024.0,
        mem_limit: int = 4 << 30,
        quiet: bool = True,
    ) -> None:
        self.timeout, self.max_peak_mb, self.mem_limit = timeout, max_peak_mb, mem_limit
        self.quiet = quiet
        self._ctx = mp.get_context("fork")
        self._proc: Any = None
        self._conn: Any = None
        self.tmp = Path(tempfile.mkdtemp(prefix="fuzz-dicom-"))

    def _start(self) -> None:
        a, b = self._ctx.Pipe()
        self._proc = self._ctx.Process(
            target=_worker, args=(b, self.mem_limit, self.quiet), daemon=True
        )
        self._proc.start()
        self._conn = a

    def _stop(self, kill: bool = False) -> None:
        if self._proc is None:
            return
        if kill:
            self._proc.kill()
        else:
            try:
                self._conn.send(None)
            except OSError:
                pass
        self._proc.join(5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)
        self._proc = None

    def run(self, case: Case) -> Outcome:
        case_dir = materialise(case, self.tmp)
        if self._proc is None or not self._proc.is_alive():
            self._start()
        self._conn.send(str(case_dir))
        try:
            if self._conn.poll(self.timeout):
                status, detail, secs, peak = self._conn.recv()
            else:
                self._stop(kill=True)
                status, detail, secs, peak = (
                    "FAIL-timeout",
                    f"no result after {self.timeout} s",
                    self.timeout,
                    0.0,
                )
        except (EOFError, OSError):
            self._stop(kill=True)
            status, detail, secs, peak = (
                "FAIL-worker-died",
                "worker process died (crash / OOM kill)",
                0.0,
                0.0,
            )
        if peak > self.max_peak_mb and not status.startswith("FAIL"):
            status, detail = "FAIL-memory", f"peak RSS grew by {peak:.0f} MB; {detail}"
        if peak > 64:
            self._stop()  # reset the high-water mark so the next case is measured on its own
        shutil.rmtree(case_dir, ignore_errors=True)
        return Outcome(case.case_id, case.kind, case.seed, status, detail, secs, peak)

    def close(self) -> None:
        self._stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def finite(x: float) -> bool:
    return math.isfinite(x)
