"""Hostile DICOM input: seeded mutations of real and synthetic files through scan and load.

Every case must end in a loaded image or a per-file reason (only ``DicomError`` escapes), within
a per-case deadline (run in a worker process that is killed on a hang) and without a large
allocation. The long run is ``bench/fuzz_dicom.py --n 10000`` (docs/reliability.md).
"""

from __future__ import annotations

import random
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.fuzzlib import MUTATORS, Case, Runner, build_seeds, make_case, materialise, run_case
from viewer.dicom import load_path, load_stack, scan
from viewer.dicom.synth import write_series
from viewer.errors import DicomError

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return build_seeds(tmp_path_factory.mktemp("seeds"))


@pytest.fixture(scope="module")
def runner():
    with Runner(timeout=20.0, max_peak_mb=512.0) as r:
        yield r


def _fail(outcomes):
    return [
        f"#{o.case_id} {o.kind} on {o.seed}: {o.status}: {o.detail[-600:]}"
        for o in outcomes
        if o.status.startswith("FAIL")
    ]


def test_seeds_cover_real_and_generated_files(seeds):
    names = [s.name for s in seeds]
    assert any(n.startswith("synth-") for n in names)
    assert sum(n.startswith("pydicom-") for n in names) >= 10
    assert len(names) >= 15


def test_every_mutation_kind_on_every_synthetic_seed(seeds, runner):
    """Deterministic coverage: each mutator once on each synthetic syntax (one file mutated)."""
    rng = random.Random(1)
    synth = [s for s in seeds if s.name.startswith("synth-")]
    outcomes = []
    cid = 0
    for seed in synth:
        for kind, fn in MUTATORS.items():
            files = list(seed.files)
            name, data = files[1 % len(files)]
            files[1 % len(files)] = (name, fn(data, rng))
            outcomes.append(runner.run(Case(cid, kind, seed.name, files)))
            cid += 1
    assert not _fail(outcomes), "\n".join(_fail(outcomes))
    statuses = {o.status for o in outcomes}
    assert "loaded" in statuses  # the untouched slices of a series still load


def test_short_random_fuzz_run(seeds, runner):
    """A few hundred random cases (fixed seed): no crash, no hang, no memory blow-up."""
    rng = random.Random(20261129)
    outcomes = [runner.run(make_case(i, seeds, rng)) for i in range(150)]
    assert not _fail(outcomes), "\n".join(_fail(outcomes))
    statuses = {o.status for o in outcomes}
    assert {"loaded", "nothing"} <= statuses | {"refused"}


@pytest.mark.parametrize("kind", ["zip_bomb", "zip_many", "zip_traversal", "zip_corrupt"])
def test_hostile_zips(seeds, runner, kind):
    seed = next(s for s in seeds if s.name.startswith("synth-Explicit VR Little"))
    o = runner.run(
        Case(1000, kind, seed.name, list(seed.files), {"kind": kind, "seed": 0.5, "bomb_mib": 256})
    )
    assert not o.status.startswith("FAIL"), o.detail
    if kind != "zip_corrupt":
        assert o.status == "loaded", o.detail  # the real members still load


def test_zip_traversal_names_never_escape(seeds, tmp_path):
    """Members named ``../../x`` or ``/tmp/x`` are read in memory, never written anywhere."""
    seed = next(s for s in seeds if s.name.startswith("synth-Explicit VR Little"))
    case = Case(7, "zip_traversal", seed.name, list(seed.files), {"kind": "zip_traversal"})
    d = materialise(case, tmp_path / "inner" / "deeper")
    before = set(Path("/tmp").glob("evil*"))
    res = scan(d)
    vol = load_stack(res.stacks[0])
    assert vol.voxels.shape[0] == len(seed.files)
    assert set(Path("/tmp").glob("evil*")) == before
    assert not list((tmp_path).rglob("evil*.dcm"))


def test_zip_bomb_member_refused_cheaply(seeds, tmp_path):
    """A small zip holding a member that inflates to 1 GiB: skipped with a reason, little memory."""
    seed = next(s for s in seeds if s.name.startswith("synth-Explicit VR Little"))
    d = materialise(
        Case(8, "zip_bomb", seed.name, list(seed.files), {"kind": "zip_bomb", "bomb_mib": 1024}),
        tmp_path,
    )
    z = d / "archive.zip"
    assert z.stat().st_size < 8 << 20
    assert sum(i.file_size for i in zipfile.ZipFile(z).infolist()) > 1 << 30
    tracemalloc.start()
    try:
        res = scan(d)
        vol = load_stack(res.stacks[0])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert vol.voxels.shape[0] == len(seed.files)
    bomb = [s for s in res.skipped if "bomb.dcm" in s.path]
    assert len(bomb) == 1 and bomb[0].reason
    assert peak < 256 << 20, f"peak {peak / 2**20:.0f} MiB while scanning a zip bomb"


def _absurd(path: Path, **attrs) -> Path:
    ds = pydicom.dcmread(path)
    for k, v in attrs.items():
        setattr(ds, k, v)
    out = path.with_name("absurd_" + path.name)
    ds.save_as(out, enforce_file_format=False)
    return out


@pytest.mark.parametrize(
    "src", ["synth", "CT_small.dcm", "JPEG2000.dcm", "MR_small_RLE.dcm", "SC_rgb_rle_2frame.dcm"]
)
def test_size_that_cannot_fit_is_refused_before_allocating(tmp_path, src):
    """65535 x 65535 x 10000 frames (~80 TiB as int16): refused at scan or load, < 64 MiB used."""
    if src == "synth":
        p = write_series(tmp_path, np.zeros((1, 16, 16)))[0]
    else:
        p = Path(pydicom.data.get_testdata_file(src))
    bad = _absurd(p, Rows=65535, Columns=65535, NumberOfFrames=10000)
    d = tmp_path / "case"
    d.mkdir()
    bad.rename(d / bad.name)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        res = scan(d)
        if res.stacks:
            with pytest.raises(DicomError, match="GiB|frames|bytes|cannot"):
                load_stack(res.stacks[0])
        else:
            assert res.skipped and res.skipped[0].reason
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 20
    assert peak < 64 << 20, f"peak {peak / 2**20:.0f} MiB"


def test_short_fuzz_run_on_real_data(shared_data, tmp_path, runner):
    """Mutations of real scanner files from ../shared/data (skipped when absent)."""
    real = [
        s
        for s in build_seeds(tmp_path, shared_data=shared_data, max_shared=4)
        if s.name == "shared-data"
    ]
    if not real:
        pytest.skip("no small DICOM files in ../shared/data")
    rng = random.Random(5)
    outcomes = [runner.run(make_case(2000 + i, real, rng)) for i in range(12)]
    assert not _fail(outcomes), "\n".join(_fail(outcomes))


def test_load_path_on_fully_broken_folder_is_one_typed_error(tmp_path):
    for i in range(5):
        (tmp_path / f"x{i}.dcm").write_bytes(
            b"\0" * 128 + b"DICM" + bytes(random.Random(i).randbytes(300))
        )
    with pytest.raises(DicomError, match="no loadable DICOM images"):
        load_path(tmp_path)


def test_run_case_classifies_a_clean_series(tmp_path):
    write_series(tmp_path, np.zeros((3, 16, 16)))
    assert run_case(tmp_path)[0] == "loaded"


def test_truncated_jpegls_declined_by_the_fast_codec_route(tmp_path):
    """Found by the 10,000-case run: CharLS (imagecodecs) spent 2.6-6 s on some truncated
    JPEG-LS codestreams; the fast route now declines a stream without its end marker and the
    pydicom route answers at once."""
    from pydicom.encaps import encapsulate, generate_frames

    from viewer.dicom.fastcodecs import decode_fast, fast_codec_ok

    p = write_series(
        tmp_path,
        np.random.default_rng(7).normal(0, 300, (1, 32, 32)),
        transfer_syntax="1.2.840.10008.1.2.4.80",
    )[0]
    ds = pydicom.dcmread(p)
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([frame[: len(frame) // 2]])
    ds.save_as(p, enforce_file_format=False)
    info = scan(tmp_path).stacks[0].first
    if not fast_codec_ok(info):
        pytest.skip("imagecodecs route unavailable")
    with pytest.raises(ValueError, match="end marker"):
        decode_fast(info)
    try:  # the pydicom decoders answer at once: a (partial) image or a per-file reason
        assert load_stack(scan(tmp_path).stacks[0]).shape == (1, 32, 32)
    except DicomError as exc:
        assert "could not be decoded" in str(exc) or "no image" in str(exc)
