"""Autosave: roundtrip, series identity checks, debounce, atomic writes, damaged files."""

from __future__ import annotations

import time
import zipfile

import numpy as np
import pytest

from viewer import autosave_store
from viewer.autosave import (
    AutosaveError,
    AutosaveMismatchError,
    Autosaver,
    EditSession,
    SeriesIdentity,
    autosave_dir,
    discard,
    find_restorable,
    list_autosaves,
    restore,
)
from viewer.masks import EditableSegmentation
from viewer.volume import Volume, VolumeMeta

SHAPE = (12, 64, 64)
LABELS = [{"value": 1, "name": "lung", "color": [255, 0, 0]}, {"value": 2, "name": "mass", "color": [0, 0, 255]}]


def identity(uid: str = "1.2.826.0.1.3680043.8.498.1", n: int = SHAPE[0], spacing=(2.5, 0.7, 0.7)) -> SeriesIdentity:
    return SeriesIdentity.compute(uid, [f"{uid}.{i + 1}" for i in range(n)], (n, 64, 64), spacing)


def make_seg() -> EditableSegmentation:
    ai = np.zeros(SHAPE, np.uint8)
    ai[3:9, 10:40, 10:30] = 1
    ai[4:7, 45:55, 40:50] = 2
    return EditableSegmentation(ai, (2.5, 0.7, 0.7), LABELS, reader="reader A")


def edit(seg: EditableSegmentation) -> None:
    with seg.stroke():
        seg.paint(0, 5, (20, 35), (30, 50), label=1, size_mm=4.0)
    seg.erase(1, 20, (5, 15), size_mm=6.0, label=1)
    seg.add_label("nodule", (250, 250, 0))
    seg.paint(2, 44, (6, 50), label=3, size_mm=3.0)
    seg.set_decision(2, "rejected")
    seg.set_review_state("reviewed")


def test_default_folder_follows_clinical_viewer_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CLINICAL_VIEWER_HOME", str(tmp_path / "home"))
    assert autosave_dir() == tmp_path / "home" / "autosave"


def test_roundtrip_restores_everything_exactly():
    seg = make_seg()
    saver = Autosaver(seg, identity())
    edit(seg)
    path = saver.save_now()
    assert path is not None and path.parent == autosave_dir() and not saver.pending
    info = find_restorable(identity())
    assert info is not None and info.revision == seg.revision and info.reader == "reader A"
    assert [d["name"] for d in info.labels] == ["lung", "mass", "nodule"]
    back = restore(identity())
    np.testing.assert_array_equal(back.current, seg.current)
    np.testing.assert_array_equal(back.ai, seg.ai)
    assert back.labels == seg.labels and back.review_state == seg.review_state
    assert back.revision == seg.revision and back.touched == seg.touched and back.has_unsaved_edits
    assert [s.to_json() for s in back.label_stats()] == [s.to_json() for s in seg.label_stats()]
    assert not back.can_undo  # undo history is not persisted (documented)
    # files are named by hashes only, and the AI map is written once
    names = sorted(p.name for p in autosave_dir().iterdir())
    assert len(names) == 2 and all("1.2.826" not in n for n in names)
    ai_file = next(p for p in autosave_dir().iterdir() if ".ai-" in p.name)
    mtime = ai_file.stat().st_mtime_ns
    seg.paint(0, 1, (3, 3), label=2, size_mm=2.0)
    saver.save_now()
    assert ai_file.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(restore(identity()).current, seg.current)


def test_small_edits_store_compactly():
    seg = make_seg()
    saver = Autosaver(seg, identity())
    seg.paint(0, 5, (20, 20), label=2, size_mm=3.0)
    path = saver.save_now()
    assert path.stat().st_size < 4096  # metadata + one compressed chunk, not the 48 KiB label map


def test_restore_refuses_a_different_series():
    seg = make_seg()
    saver = Autosaver(seg, identity())
    edit(seg)
    path = saver.save_now()
    other_uid = identity("1.2.3.4.5")
    assert find_restorable(other_uid) is None
    with pytest.raises(AutosaveError, match="no autosaved edits"):
        restore(other_uid)
    with pytest.raises(AutosaveMismatchError, match="different series"):
        restore(other_uid, path=path)
    # same SeriesInstanceUID, one instance fewer / other spacing: a different fingerprint
    for changed in (identity(n=11), identity(spacing=(2.0, 0.7, 0.7))):
        assert changed.series_instance_uid == identity().series_instance_uid
        assert find_restorable(changed) is None
        with pytest.raises(AutosaveMismatchError, match="same SeriesInstanceUID but different images"):
            restore(changed, path=path)


def test_identity_from_volume_tracks_instances_and_geometry():
    meta = VolumeMeta(series_instance_uid="1.2.3", sop_instance_uids=["1.2.3.1", "1.2.3.2"],
                      frame_numbers=[None, None])
    vol = Volume(np.zeros((2, 4, 4), np.int16), (1.0, 0.5, 0.5), meta=meta)
    a = SeriesIdentity.from_volume(vol)
    assert a == SeriesIdentity.from_volume(vol)
    meta2 = VolumeMeta(series_instance_uid="1.2.3", sop_instance_uids=["1.2.3.2", "1.2.3.1"],
                       frame_numbers=[None, None])
    assert SeriesIdentity.from_volume(Volume(vol.voxels, vol.spacing, meta=meta2)) != a
    assert SeriesIdentity.from_volume(Volume(vol.voxels, vol.spacing, origin=(0, 0, 5), meta=meta)) != a


def test_debounce_saves_after_pause_or_max_delay():
    now = [100.0]
    seg = make_seg()
    saver = Autosaver(seg, identity(), delay_s=0.5, max_delay_s=2.0, clock=lambda: now[0])
    assert not saver.maybe_save(now[0])  # nothing changed
    seg.paint(0, 5, (20, 20), label=2, size_mm=3.0)
    assert not saver.maybe_save(100.3)
    assert saver.maybe_save(100.6) and not saver.pending
    # a continuous drag: changes every 0.2 s; saved by the max delay after 2 s
    saved_at = []
    for k in range(15):
        now[0] = 101.0 + 0.2 * k
        seg.paint(0, 5, (20, 25 + k), label=2, size_mm=3.0)  # new voxels each time
        if saver.maybe_save(now[0]):
            saved_at.append(round(now[0] - 101.0, 1))
    assert saved_at == [2.0]
    assert find_restorable(identity()).revision == saver.saved_revision


def test_background_thread_saves_within_seconds_and_stop_flushes():
    seg = make_seg()
    saver = Autosaver(seg, identity(), delay_s=0.1)
    saved = []
    saver.on_saved.append(lambda rev, path: saved.append(rev))
    saver.start(poll_s=0.02)
    try:
        seg.paint(0, 5, (20, 20), label=2, size_mm=3.0)
        t0 = time.monotonic()
        assert saver.wait_saved(timeout=5.0)
        while not saved and time.monotonic() - t0 < 5.0:  # on_saved runs just after the flag
            time.sleep(0.01)
        assert saved == [seg.revision] and time.monotonic() - t0 < 3.0  # "within seconds"
        seg.paint(0, 6, (20, 20), label=2, size_mm=3.0)
    finally:
        saver.close()  # flushes
    assert find_restorable(identity()).revision == seg.revision
    assert saver._on_change not in seg.on_change


def test_failed_write_keeps_previous_save_and_leaves_no_temp(monkeypatch):
    seg = make_seg()
    saver = Autosaver(seg, identity())
    seg.paint(0, 5, (20, 20), label=2, size_mm=3.0)
    saver.save_now()
    good = restore(identity()).current.copy()
    seg.paint(0, 6, (20, 20), label=2, size_mm=9.0)

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    errors = []
    saver.on_error.append(errors.append)
    with monkeypatch.context() as m:
        m.setattr(autosave_store.os, "replace", broken_replace)
        assert not saver.maybe_save(saver._clock() + 10)
        assert errors and "No space left" in str(errors[0]) and "CLINICAL_VIEWER_HOME" in str(errors[0])
        assert saver.pending
        with pytest.raises(AutosaveError):
            saver.save_now()
    assert [p.name for p in autosave_dir().iterdir() if p.name.startswith(".")] == []
    np.testing.assert_array_equal(restore(identity()).current, good)
    saver.save_now()
    np.testing.assert_array_equal(restore(identity()).current, seg.current)


def test_damaged_or_foreign_files_give_clear_errors():
    seg = make_seg()
    saver = Autosaver(seg, identity())
    seg.paint(0, 5, (20, 20), label=2, size_mm=3.0)
    path = saver.save_now()
    path.write_bytes(path.read_bytes()[:40])  # truncated
    assert find_restorable(identity()) is None
    with pytest.raises(AutosaveError, match="cannot be read"):
        restore(identity())
    assert list_autosaves() == []
    # an AI map that does not match its recorded digest
    saver.saved_revision = -1
    saver.save_now()
    ai_file = next(p for p in autosave_dir().iterdir() if ".ai-" in p.name)
    other = np.zeros(SHAPE, np.uint8)
    np.savez_compressed(ai_file, ai=other)
    with pytest.raises(AutosaveMismatchError, match="SHA-256"):
        restore(identity())
    assert zipfile.is_zipfile(path)


def test_discard_removes_files_and_unsaved_state():
    seg = make_seg()
    saver = Autosaver(seg, identity())
    edit(seg)
    saver.save_now()
    assert seg.has_unsaved_edits
    assert saver.discard() and not saver.pending
    assert find_restorable(identity()) is None and list(autosave_dir().iterdir()) == []
    assert not discard(identity())


def test_committed_state_survives_restore():
    seg = make_seg()
    saver = Autosaver(seg, identity())
    edit(seg)
    seg.mark_committed()
    saver.save_now()
    assert not restore(identity()).has_unsaved_edits
    seg.paint(0, 1, (3, 3), label=2, size_mm=2.0)
    saver.save_now()
    assert restore(identity()).has_unsaved_edits
    assert [i.revision for i in list_autosaves()] == [seg.revision]


def test_save_waits_for_an_open_stroke_within_grace():
    now = [0.0]
    seg = make_seg()
    saver = Autosaver(seg, identity(), delay_s=0.5, max_delay_s=2.0, stroke_grace_s=5.0, clock=lambda: now[0])
    seg.begin_stroke()
    seg.paint(0, 5, (20, 20), label=2, size_mm=3.0)
    now[0] = 3.0
    assert saver.due() and not saver.maybe_save()  # mouse still held: deferred
    seg.end_stroke()
    assert saver.maybe_save() and not saver.pending
    seg.begin_stroke()
    seg.paint(0, 6, (20, 20), label=2, size_mm=3.0)
    now[0] = 9.0  # a stroke left open longer than the grace is saved anyway
    assert saver.maybe_save()
    seg.end_stroke()
    np.testing.assert_array_equal(restore(identity()).current, seg.current)


def test_saves_are_incremental_by_chunk():
    shape = (40, 160, 200)  # 3 x 3 x 4 chunks of 16 x 64 x 64
    ai = np.zeros(shape, np.uint8)
    ai[5:35, 20:140, 20:180] = 1
    seg = EditableSegmentation(ai, (1.0, 0.8, 0.8), LABELS)
    ident = SeriesIdentity.compute("1.2.3.9", [str(i) for i in range(40)], shape, (1.0, 0.8, 0.8))
    saver = Autosaver(seg, ident)
    seg.paint(0, 20, (80, 10), (80, 190), label=2, size_mm=4.0)  # across all x chunks
    seg.clear_label(1, axis=1, index=100)
    saver.save_now()
    rev = seg.revision
    seg.paint(0, 39, (159, 199), label=2, size_mm=1.0)  # one voxel in the far corner
    part = seg.snapshot(since_revision=rev)
    assert list(part.chunks) == [(2, 2, 3)]
    full = seg.snapshot()
    assert len(full.chunks) > 4 and (2, 2, 3) in full.chunks
    saver.save_now()
    assert saver._payload_rev == seg.revision and len(saver._payloads) == len(full.chunks)
    np.testing.assert_array_equal(restore(ident).current, seg.current)
    while seg.undo() is not None:  # every edit undone: the chunks are all-zero differences again
        pass
    saver.save_now()
    assert saver._payloads == {}
    back = restore(ident)
    np.testing.assert_array_equal(back.current, seg.ai)
    assert back.provenance_counts()["as_ai"] == seg.ai.size


def test_corrupted_chunk_is_reported_not_restored():
    seg = make_seg()
    saver = Autosaver(seg, identity())
    edit(seg)
    path = saver.save_now()
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    data = arrays["chunk_data"].copy()
    data[len(data) // 2] ^= 0xFF
    arrays["chunk_data"] = data
    np.savez(path, **arrays)
    with pytest.raises(AutosaveError, match="damaged"):
        restore(identity())
    arrays["chunk_sizes"] = arrays["chunk_sizes"] + 1
    np.savez(path, **arrays)
    with pytest.raises(AutosaveError, match="does not match its data"):
        restore(identity())


def test_edit_session_restore_commit_close_discard():
    meta = VolumeMeta(series_instance_uid="1.2.3.77", sop_instance_uids=[f"1.2.3.77.{i}" for i in range(SHAPE[0])])
    vol = Volume(np.full(SHAPE, -800, np.int16), (2.5, 0.7, 0.7), meta=meta)
    ai = make_seg().ai
    s1 = EditSession.start(vol, ai, LABELS, reader="reader A")
    assert not s1.restored and not s1.must_ask_before_close
    edit(s1.seg)
    assert s1.must_ask_before_close
    s1.close()  # e.g. the app crashed or was closed with "keep for later"
    ident = SeriesIdentity.from_volume(vol)
    assert find_restorable(ident).revision == s1.seg.revision
    s2 = EditSession.start(vol, ai, LABELS, restore_edits=True)
    assert s2.restored and s2.must_ask_before_close and s2.seg.reader == "reader A" and not s2.ai_changed
    np.testing.assert_array_equal(s2.seg.current, s1.seg.current)
    assert s2.seg.paint(0, 5, (20, 20), label=1, size_mm=4.0, hu_range=(-900, -700)) is not None
    s2.committed()  # exported
    assert not s2.must_ask_before_close
    s2.close()
    s3 = EditSession.start(vol, ai, LABELS, restore_edits=True)
    assert s3.restored and not s3.must_ask_before_close  # the commit was autosaved too
    np.testing.assert_array_equal(s3.seg.current, s2.seg.current)
    other_ai = ai.copy()
    other_ai[0, 0, 0] = 2
    s3b = EditSession.start(vol, other_ai, LABELS, restore_edits=True)
    assert s3b.restored and s3b.ai_changed and np.array_equal(s3b.seg.ai, ai)
    s3b.close()
    s3.discard()
    assert find_restorable(ident) is None
    s4 = EditSession.start(vol, ai, LABELS, restore_edits=True)
    assert not s4.restored and np.array_equal(s4.seg.current, ai)
    s4.close()
