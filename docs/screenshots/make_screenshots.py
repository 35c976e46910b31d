"""Screenshots of the real window (offscreen) for the README and the user guide.

Opens the demo study through the real scanner/loader (``viewer.demo``), then saves with
``QWidget.grab()``: the lung window (``viewer-lung.png``), the 2x2 MPR layout (``mpr.png``), a
ruler and an ellipse ROI (``measure.png``) and, when a model package is installed, the
segmentation overlay with its statistics (``segmentation.png``).

Usage: ``python docs/screenshots/make_screenshots.py``
(set ``CLINICAL_VIEWER_HOME`` to reuse a demo study written earlier).
"""

from __future__ import annotations

from _shots import HERE, wait

from viewer.qt.app import create_app, start_demo
from viewer.qt.main_window import MainWindow


def main() -> int:
    app = create_app()
    w = MainWindow(recording_errors=True)
    w.resize(1500, 950)
    w.show()
    loaded = []
    w.volume_loaded.connect(loaded.append)
    start_demo(w, segment=False)
    wait(app, lambda: loaded)
    w.state.set_layout("1x1", 0)
    w.actions_by_name["window_lung"].trigger()
    w.docks["DICOM tags"].raise_()
    w.docks["Studies"].raise_()
    wait(app, lambda: True)
    w.grab().save(str(HERE / "viewer-lung.png"))

    w.state.set_layout("2x2")
    nz, ny, nx = w.state.volume.shape
    w.state.set_cursor(nz // 2, int(ny * 0.45), int(nx * 0.35))
    wait(app, lambda: True)
    w.grab().save(str(HERE / "mpr.png"))

    w.state.set_layout("1x1", 0)
    v = w.grid.views[0]
    wait(app, lambda: True)
    w.docks["Measurements"].raise_()
    v.add_measurement("ruler", (ny * 0.30, nx * 0.22), (ny * 0.30, nx * 0.78))
    v.add_measurement("ellipse", (ny * 0.42, nx * 0.28), (ny * 0.55, nx * 0.40))
    v.add_measurement("rect", (ny * 0.60, nx * 0.45), (ny * 0.68, nx * 0.55))
    wait(app, lambda: True)
    w.grab().save(str(HERE / "measure.png"))

    panel = w.segmentation
    if panel.packages:
        for m in list(w.state.measurements):
            w.state.remove_measurement(m.id)
        w.docks["Segmentation"].raise_()
        job = panel.run_if_model_available()
        if job is not None:
            wait(app, lambda: job.state not in ("pending", "running"), timeout=900)
            w.state.set_layout("2x2")
            ctl = panel.controls
            wait(app, lambda: ctl.stats_table.rowCount() > 0)
            rows = [ctl.stats_table.item(r, 0).text() for r in range(ctl.stats_table.rowCount())]
            lesion = next((r for r, t in enumerate(rows) if t.strip().endswith(" 1")), None)
            if lesion is not None:  # click the largest lesion: every view jumps to it
                ctl.stats_table.setCurrentCell(lesion, 0)
                ctl._stats_clicked(lesion, 0)
            wait(app, lambda: True)
            w.grab().save(str(HERE / "segmentation.png"))
    print("errors:", [r.message for r in w.errors.records])
    w.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
