"""The job runner and the error presenter (headless Qt)."""

from __future__ import annotations

import threading
import time

import pytest

from inference.jobs import Cancelled, check_cancel, report
from viewer.errors import DicomError
from viewer.qt.errors import ErrorPresenter
from viewer.qt.workers import JobRunner

pytestmark = pytest.mark.timeout(30)


def slow(n: int, *, progress=None, cancel=None, delay=0.01):
    for i in range(n):
        check_cancel(cancel)
        time.sleep(delay)
        report(progress, i + 1, n, "step")
    return n * 2


@pytest.fixture
def runner(qtbot):
    r = JobRunner()
    yield r
    assert r.shutdown(5.0)


def test_result_and_progress_arrive_on_gui_thread(qtbot, runner):
    seen = []
    job = runner.submit(
        lambda progress, cancel: slow(5, progress=progress, cancel=cancel), name="t"
    )
    job.progress.connect(
        lambda d, t, m: seen.append((d, t, threading.current_thread() is threading.main_thread()))
    )
    with qtbot.waitSignal(job.result, timeout=5000) as sig:
        pass
    assert sig.args == [10]
    assert seen and seen[-1][:2] == (5, 5) and all(s[2] for s in seen)


def test_error_signal_carries_exception_and_traceback(qtbot, runner):
    def bad(progress, cancel):
        raise DicomError("file x.dcm: (0028,0030) PixelSpacing missing; re-export the series")

    job = runner.submit(bad)
    with qtbot.waitSignal(job.error, timeout=5000) as sig:
        pass
    exc, tb = sig.args
    assert isinstance(exc, DicomError) and "Traceback" in tb and "bad" in tb


def test_cancel_reports_cancelled_not_error(qtbot, runner):
    job = runner.submit(lambda progress, cancel: slow(500, progress=progress, cancel=cancel))
    errors = []
    job.error.connect(lambda *a: errors.append(a))
    t0 = time.monotonic()
    job.cancel()
    with qtbot.waitSignal(job.cancelled, timeout=5000):
        pass
    assert time.monotonic() - t0 < 1.0 and not errors and job.state == "cancelled"


def test_latest_request_wins(qtbot, runner):
    results = []
    first = runner.submit(
        lambda progress, cancel: slow(300, progress=progress, cancel=cancel), key="slice"
    )
    first.result.connect(results.append)
    second = runner.submit(
        lambda progress, cancel: slow(3, progress=progress, cancel=cancel), key="slice"
    )
    second.result.connect(results.append)
    with qtbot.waitSignals([first.finished, second.finished], timeout=5000):
        pass
    assert first.state == "cancelled" and results == [6]


def test_shutdown_joins_threads(qtbot):
    r = JobRunner()
    jobs = [
        r.submit(lambda progress, cancel: slow(1000, progress=progress, cancel=cancel))
        for _ in range(3)
    ]
    assert r.threads_alive() == 3
    assert r.shutdown(5.0)
    assert all(not j.is_running for j in jobs)


def test_busy_signal(qtbot, runner):
    states = []
    runner.busy.connect(states.append)
    job = runner.submit(lambda progress, cancel: 1)
    with qtbot.waitSignal(job.finished, timeout=5000):
        pass
    qtbot.waitUntil(lambda: states == [True, False], timeout=2000)


class TestErrorPresenter:
    def test_records_user_error_with_its_message(self, qtbot):
        p = ErrorPresenter(recording=True)
        try:
            raise DicomError("slice3.dcm: (0028,0010) Rows is 0; the file is damaged, re-export it")
        except DicomError as exc:
            rec = p.present(exc, title="Open failed")
        assert rec.message.startswith("slice3.dcm: (0028,0010)")
        assert "Traceback" in rec.details and rec.title == "Open failed"
        assert p.records == [rec]

    def test_internal_error_is_labelled(self, qtbot):
        p = ErrorPresenter(recording=True)
        rec = p.present(KeyError("boom"))
        assert rec.message.startswith("Internal error (KeyError)")

    def test_cancel_is_not_an_error(self, qtbot):
        p = ErrorPresenter(recording=True)
        assert p.present(Cancelled()) is None and p.records == []

    def test_excepthook_routes_to_presenter(self, qtbot):
        import sys

        p = ErrorPresenter(recording=True)
        p.install_excepthook()
        try:
            try:
                raise RuntimeError("slot failed")
            except RuntimeError:
                sys.excepthook(*sys.exc_info())
        finally:
            p.uninstall_excepthook()
        assert p.records[0].title == "Unexpected error" and "slot failed" in p.records[0].message


def test_nothing_delivered_after_shutdown(qtbot):
    r = JobRunner()
    got = []
    job = r.submit(lambda progress, cancel: 42)
    job.result.connect(got.append)
    job.finished.connect(lambda: got.append("finished"))
    job.wait(5.0)  # done in the worker, result still queued for the GUI thread
    assert r.shutdown(5.0)
    qtbot.wait(50)
    assert got == [] and job.state == "done"
    late = r.submit(lambda progress, cancel: 1)
    assert late.state == "cancelled" and not late.is_running
