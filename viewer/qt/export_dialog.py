"""File → Export: report (PDF, with preview), DICOM SEG, labels / volume as NIfTI, key image PNG.

``install_export(win)`` adds the File → Export submenu and returns an :class:`Exporter`
(``win.exporter``). Each menu entry opens an :class:`ExportDialog` for the current series: the
target file (Browse… opens a file dialog; tests set it directly), "Anonymise" (DICOM PS3.15 basic
profile for the SEG, no identifiers in the PDF), the reader's name and review state from the
edit session, and for the report the optional Grad-CAM / preprocessing views. The export runs in
a worker (``win.runner``) with progress and Cancel; files are written atomically by the export
layer; errors go to ``win.errors``. ``ExportDialog.export_to(path, kind, options)`` is the one
entry point the buttons (and tests) use.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from viewer.qt.export_jobs import KINDS, NEEDS_LABELS, ExportOptions, key_image_rgb, run_export
from viewer.qt.export_sources import ExportContext, gather

if TYPE_CHECKING:  # pragma: no cover
    from viewer.qt.main_window import MainWindow
    from viewer.qt.workers import Job

__all__ = ["ExportDialog", "Exporter", "install_export"]

log = logging.getLogger(__name__)
SOURCE_TEXT = {
    "edits": "the reader's edited segmentation",
    "result": "the model's segmentation",
    "seg": "the DICOM SEG loaded from the study",
    "": "no segmentation (series only)",
}


def _params_text(views: list[dict[str, Any]]) -> str:
    """One line of scalar parameters per view (tooltips)."""
    scalar = (str, int, float)
    return "\n".join(
        ", ".join(f"{k}: {val}" for k, val in v.items() if isinstance(val, scalar)) for v in views
    )


class ExportDialog(QDialog):
    """One export of ``kind`` for the current series (see the module docstring).

    Signals
    -------
    exported(str)   the file was written (its path)
    """

    exported = Signal(str)

    def __init__(self, win: MainWindow, kind: str, parent: QWidget | None = None):
        super().__init__(parent or win)
        self.win, self.kind = win, kind
        self.setObjectName(f"export_dialog_{kind}")
        self.setWindowTitle(f"Export {KINDS[kind][0].rstrip('…')}")
        self.ctx: ExportContext = gather(win)
        self.job: Job | None = None
        self.preview: Any = None
        self.last_path: Path | None = None
        self.path = QLineEdit(self)
        self.path.setObjectName("export_path")
        folder = Path(str(win.settings.value("export_dir", "") or Path.home()))
        self.path.setText(str(folder / KINDS[kind][1]))
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self.browse)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        self.anonymize = QCheckBox("Anonymise (no patient name, ID, birth date; new UIDs)", self)
        self.anonymize.setObjectName("export_anonymize")
        self.anonymize.setChecked(win.state.hide_identity)
        self.reader = QLineEdit(self.ctx.reader, self)
        self.reader.setObjectName("export_reader")
        self.reader.setPlaceholderText("reading physician")
        self.review = QLabel(self.ctx.review_state or "-", self)
        self.review.setObjectName("export_review")
        self.content = QLabel(self._content_text(), self)
        self.content.setObjectName("export_content")
        self.content.setWordWrap(True)
        self.gradcam = QCheckBox("Include the Grad-CAM heatmap", self)
        self.gradcam.setObjectName("export_gradcam")
        self.preprocess = QCheckBox("Include the preprocessing view", self)
        self.preprocess.setObjectName("export_preprocess")
        # the preprocessing preview is pre-selected only while the reader can see it
        pre_panel = getattr(getattr(win, "explain", None), "preprocess", None)
        pre_seen = pre_panel is not None and pre_panel.isVisible()
        for box, views, on in (
            (self.gradcam, self.ctx.gradcam, True),
            (self.preprocess, self.ctx.preprocess, pre_seen),
        ):
            box.setEnabled(bool(views))
            box.setChecked(bool(views) and on)
            box.setToolTip(_params_text(views) or "Nothing of this kind is shown for this series")
        form = QFormLayout()
        form.addRow("File", row)
        form.addRow("", self.anonymize)
        form.addRow("Reader", self.reader)
        form.addRow("Review state", self.review)
        form.addRow("Contents", self.content)
        if kind == "report":
            form.addRow("", self.gradcam)
            form.addRow("", self.preprocess)
        self.progress = QProgressBar(self)
        self.progress.setObjectName("export_progress")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")  # idle: an empty bar, no "0%"
        self.status = QLabel("", self)
        self.status.setObjectName("export_status")
        self.status.setWordWrap(True)
        self.preview_button = QPushButton("Preview…", self)
        self.preview_button.setObjectName("export_preview")
        self.preview_button.clicked.connect(self.show_preview)
        self.preview_button.setVisible(kind == "report")
        self.export_button = QPushButton("Save" if kind == "report" else "Export", self)
        self.export_button.setObjectName("export_go")
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(lambda: self.export_to(self.path.text()))
        self.cancel_button = QPushButton("Close", self)
        self.cancel_button.setObjectName("export_cancel")
        self.cancel_button.clicked.connect(self.cancel_or_close)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for b in (self.preview_button, self.export_button, self.cancel_button):
            buttons.addWidget(b)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addLayout(buttons)
        if kind in NEEDS_LABELS and not self.ctx.has_labels:
            self.export_button.setEnabled(False)
            self.status.setText(
                "This series has no segmentation: run a model, edit, or load a SEG."
            )
        self.resize(560, self.sizeHint().height())

    # ------------------------------------------------------------------ contents
    def _content_text(self) -> str:
        c = self.ctx
        if c.volume is None:
            return "No series is open."
        nz, ny, nx = c.volume.shape
        if self.kind == "volume_nifti":
            return f"The series, {nx} x {ny} x {nz} voxels (NIfTI-1, RAS affine)."
        if self.kind == "png":
            return "The active view with its overlays and rulers, at full resolution."
        parts = [f"Segmentation: {SOURCE_TEXT[c.source]}"]
        if c.labels_info:
            parts[0] += f" ({', '.join(i['name'] for i in c.labels_info.values())})"
        if self.kind == "report":
            if c.model:
                parts.append(
                    f"Model: {c.model.get('name', '?')} {c.model.get('version', '')}".strip()
                )
            if c.ai_vs_final:
                parts.append("AI vs final volumes")
            parts.append(f"{len(c.measurements)} measurement(s)")
            parts.append("parity verdict: " + ("yes" if c.parity else "no comparison run"))
        return "; ".join(parts) + "."

    def options(self) -> ExportOptions:
        """The choices currently set in the dialog."""
        return ExportOptions(
            anonymize=self.anonymize.isChecked(),
            reader=self.reader.text().strip(),
            review_state=self.ctx.review_state,
            include_gradcam=self.gradcam.isChecked(),
            include_preprocess=self.preprocess.isChecked(),
        )

    def browse(self) -> None:
        name, _ = QFileDialog.getSaveFileName(
            self, self.windowTitle(), self.path.text(), KINDS[self.kind][2]
        )
        if name:
            self.path.setText(name)

    # ------------------------------------------------------------------ export
    def export_to(
        self,
        path: str | Path,
        kind: str | None = None,
        options: ExportOptions | None = None,
        *,
        pdf: bytes | None = None,
    ) -> Job | None:
        """Export ``kind`` (default: the dialog's) to ``path`` in a worker; returns the job."""
        kind = kind or self.kind
        opts = options or self.options()
        path = Path(path).expanduser()
        if kind == "png" and opts.key_rgb is None:
            try:
                opts.key_rgb = key_image_rgb(self.win.grid.active_view(), self.win.state)
            except Exception as exc:  # noqa: BLE001 - typed errors reach the presenter
                self.win.errors.present(exc, title="Export failed")
                return None
        if kind == "report" and pdf is None and self.preview is not None:
            pdf = self.preview.pdf_for(opts)  # what the reader saw is what is saved
        if pdf is None and self.win.state.volume is not None:
            self.ctx = gather(self.win)  # edits made while the dialog was open are included
            self.content.setText(self._content_text())
        ctx = self.ctx
        holder: dict[str, Any] = {}

        def fn(progress: Any, cancel: Any) -> Path:
            out = run_export(kind, path, ctx, opts, pdf=pdf, progress=progress, cancel=cancel)
            holder["written"] = out
            return out

        self.job = job = self.win.runner.submit(fn, name=f"export-{kind}", key=f"export-{kind}")
        self.progress.setRange(0, 0)
        self.progress.setFormat("%p%")
        self.status.setText(f"Exporting to {path.name} …")
        self.export_button.setEnabled(False)
        self.cancel_button.setText("Cancel")
        job.progress.connect(self._progress)
        job.result.connect(lambda p: self._done(Path(p), kind, opts))
        job.error.connect(self._failed)
        job.cancelled.connect(lambda: self._cancelled(holder))
        job.finished.connect(self._finished)
        return job

    def _progress(self, done: int, total: int, message: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        if message:
            self.status.setText(message)

    def _done(self, path: Path, kind: str, opts: ExportOptions) -> None:
        self.last_path = path
        self.win.settings.setValue("export_dir", str(path.parent))
        self.status.setText(f"Written: {path}" + (" (anonymised)" if opts.anonymize else ""))
        self.win.message(f"Exported {path.name}", 8000)
        ctrl = getattr(self.win, "edit", None)
        session = getattr(ctrl, "session", None) if ctrl is not None else None
        if (
            kind in ("seg", "labels_nifti", "report")
            and self.ctx.source == "edits"
            and session is not None
        ):
            try:
                session.committed()  # the reader's edits are now saved outside the app
            except Exception:  # noqa: BLE001 - the export itself succeeded
                log.exception("could not mark the edits as committed")
        self.exported.emit(str(path))

    def _failed(self, exc: BaseException, tb: str) -> None:
        self.status.setText(f"Failed: {exc}")
        self.win.errors.present(exc, title="Export failed", details=tb)

    def _cancelled(self, holder: dict[str, Any]) -> None:
        if "written" in holder:  # the file was renamed into place before Cancel arrived
            self.last_path = Path(holder["written"])
            self.status.setText(f"Finished before it could be cancelled: {self.last_path}")
        else:
            self.status.setText("Cancelled: nothing was written.")

    def _finished(self) -> None:
        self.job = None
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if self.last_path is not None else 0)
        self.export_button.setEnabled(not (self.kind in NEEDS_LABELS and not self.ctx.has_labels))
        self.cancel_button.setText("Close")

    def cancel_or_close(self) -> None:
        if self.job is not None:
            self.job.cancel()
        else:
            self.close()

    def show_preview(self) -> Any:
        """Open the report preview (the PDF's pages) for the current options."""
        from viewer.qt.report_preview import ReportPreview

        self.preview = ReportPreview(self, self.options())
        self.preview.show()
        return self.preview


class Exporter(QObject):
    """The File → Export menu of a window; ``open(kind)`` shows the dialog for this series."""

    def __init__(self, win: MainWindow) -> None:
        super().__init__(win)
        self.win = win
        self.dialog: ExportDialog | None = None

    def open(self, kind: str, *, show: bool = True) -> ExportDialog | None:
        if self.win.state.volume is None:
            self.win.message("Open a series before exporting", 5000)
            return None
        if self.dialog is not None:
            self.dialog.close()
        self.dialog = ExportDialog(self.win, kind)
        if show:
            self.dialog.show()
        return self.dialog


def install_export(win: MainWindow) -> Exporter:
    """Add File → Export (before "Cancel running job") and return the :class:`Exporter`."""
    exporter = Exporter(win)
    file_menu = next(a.menu() for a in win.menuBar().actions() if a.menu() is not None)
    menu = QMenu("&Export", file_menu)
    menu.setObjectName("menu_export")
    for kind, (text, _name, _f) in KINDS.items():
        act = QAction(text, win)
        act.setObjectName(f"action_export_{kind}")
        act.triggered.connect(lambda _c=False, k=kind: exporter.open(k))
        menu.addAction(act)
        win.actions_by_name[f"export_{kind}"] = act
    before = win.actions_by_name.get("cancel")
    if before is not None:
        file_menu.insertMenu(before, menu)
        file_menu.insertSeparator(before)
    else:
        file_menu.addMenu(menu)

    def update(**_: Any) -> None:
        menu.setEnabled(win.state.volume is not None)

    win.state.subscribe("volume", update)
    update()
    return exporter
