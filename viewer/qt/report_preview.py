"""Preview of the PDF report before it is saved: the PDF's own pages, rendered in a worker.

The report is built once (:func:`viewer.qt.export_jobs.report_pdf`) and its pages are rendered
with ``pdftoppm`` (poppler-utils) into images. Without ``pdftoppm`` (PySide6-Essentials has no
QtPdf), the preview shows the report's text summary and the key image of the active view instead,
and says so. "Save" writes exactly the bytes that were previewed (atomic, in a worker).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from viewer.jobs import check_cancel, report
from viewer.qt.export_jobs import ExportOptions, key_image_rgb, report_pdf

if TYPE_CHECKING:  # pragma: no cover
    from viewer.qt.export_dialog import ExportDialog

__all__ = ["ReportPreview", "render_pdf_pages"]

log = logging.getLogger(__name__)


def render_pdf_pages(pdf: bytes, *, dpi: int = 60, cancel: Any = None) -> list[np.ndarray]:
    """Pages of ``pdf`` as RGB uint8 [h, w, 3] images (``pdftoppm``); [] when it is missing.

    The PDF goes through a private temporary folder that is removed afterwards.
    """
    import cv2

    exe = shutil.which("pdftoppm")
    if exe is None:
        return []
    with tempfile.TemporaryDirectory(prefix="cv-preview-") as tmp:
        src = Path(tmp) / "report.pdf"
        src.write_bytes(pdf)
        check_cancel(cancel)
        subprocess.run(
            [exe, "-r", str(int(dpi)), "-png", str(src), str(Path(tmp) / "page")],
            check=True,
            capture_output=True,
            timeout=120,
        )
        pages = []
        for p in sorted(Path(tmp).glob("page*.png")):
            bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if bgr is not None:
                pages.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        return pages


def _pixmap(rgb: np.ndarray) -> QPixmap:
    a = np.ascontiguousarray(rgb)
    img = QImage(a.data, a.shape[1], a.shape[0], a.shape[1] * 3, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(img.copy())


class ReportPreview(QDialog):
    """Pages of the report for the dialog's current options; Save writes the previewed bytes.

    Signals
    -------
    ready(int)   the preview is shown (number of pages; 0 = text fallback)
    """

    ready = Signal(int)

    def __init__(self, dialog: ExportDialog, options: ExportOptions, parent: QWidget | None = None):
        super().__init__(parent or dialog)
        self.dialog, self.options = dialog, options
        self.win = dialog.win
        self.setObjectName("report_preview")
        self.setWindowTitle("Report preview")
        self.pdf: bytes | None = None
        self.pages: list[np.ndarray] = []
        self.fallback = False
        self.pages_box = QWidget(self)
        self.pages_lay = QVBoxLayout(self.pages_box)
        self.pages_lay.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self.pages_box)
        self.scroll.setStyleSheet("QScrollArea { background: #666; }")
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 0)
        self.info = QLabel("Building the report …", self)
        self.info.setObjectName("preview_info")
        self.save_button = QPushButton("Save", self)
        self.save_button.setObjectName("preview_save")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self.save)
        close = QPushButton("Close", self)
        close.clicked.connect(self.close)
        row = QHBoxLayout()
        row.addWidget(self.info, 1)
        row.addWidget(self.save_button)
        row.addWidget(close)
        lay = QVBoxLayout(self)
        lay.addWidget(self.scroll, 1)
        lay.addWidget(self.progress)
        lay.addLayout(row)
        self.resize(620, 820)
        self.job = self._build()

    def _build(self) -> Any:
        ctx, opts = self.dialog.ctx, self.options

        def fn(progress: Any, cancel: Any) -> tuple[bytes, list[np.ndarray]]:
            pdf = report_pdf(ctx, opts, progress=progress, cancel=cancel)
            report(progress, 0, 1, "rendering the pages")
            try:
                pages = render_pdf_pages(pdf, cancel=cancel)
            except (OSError, subprocess.SubprocessError) as exc:
                log.warning("pdftoppm failed (%s); text preview", type(exc).__name__)
                pages = []
            return pdf, pages

        job = self.win.runner.submit(fn, name="report-preview", key="report-preview")
        job.progress.connect(self._progress)
        job.result.connect(self._show)
        job.error.connect(self._failed)
        job.cancelled.connect(lambda: self.info.setText("Preview cancelled"))
        return job

    def _progress(self, done: int, total: int, message: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.info.setText(message or "Building the report …")

    def _failed(self, exc: BaseException, tb: str) -> None:
        self.progress.hide()
        self.info.setText(f"The report could not be built: {exc}")
        self.win.errors.present(exc, title="Report preview failed", details=tb)

    def _show(self, value: tuple[bytes, list[np.ndarray]]) -> None:
        self.pdf, self.pages = value
        self.progress.hide()
        if self.pages:
            for i, rgb in enumerate(self.pages):
                lab = QLabel(self.pages_box)
                lab.setObjectName(f"preview_page_{i + 1}")
                lab.setPixmap(_pixmap(rgb))
                lab.setStyleSheet("border: 1px solid #333; background: white;")
                self.pages_lay.addWidget(lab)
            self.info.setText(
                f"{len(self.pages)} page(s), {len(self.pdf) // 1024} kB — check, then Save"
            )
        else:
            self._show_fallback()
        self.save_button.setEnabled(True)
        self.ready.emit(len(self.pages))

    def _show_fallback(self) -> None:
        """No page renderer: a text summary of what the report contains plus the key image."""
        self.fallback = True
        text = QLabel(self.pages_box)
        text.setObjectName("preview_text")
        text.setWordWrap(True)
        text.setTextFormat(Qt.TextFormat.PlainText)
        text.setStyleSheet("background: white; padding: 12px;")
        text.setFixedWidth(520)
        ctx, opts = self.dialog.ctx, self.options
        lines = [
            "Page images are unavailable (pdftoppm is not installed); summary of the report:",
            "",
            f"Contents: {self.dialog.content.text()}",
            f"Reader: {opts.reader or ctx.reader or 'not assigned'}",
            f"Review state: {opts.review_state or ctx.review_state or 'AI result, not reviewed'}",
            f"Anonymised: {'yes' if opts.anonymize else 'no'}",
        ]
        lines += [f"Domain warning: {w}" for w in ctx.domain_warnings]
        if ctx.result is not None:
            lines += [f"Caution: {c}" for c in ctx.result.caution_lines()]
        text.setText("\n".join(lines))
        self.pages_lay.addWidget(text)
        try:
            img = QLabel(self.pages_box)
            img.setObjectName("preview_key_image")
            pix = _pixmap(key_image_rgb(self.win.grid.active_view(), self.win.state))
            img.setPixmap(pix.scaledToWidth(520, Qt.TransformationMode.SmoothTransformation))
            img.setToolTip("The active view (key image) at the time of the preview")
            self.pages_lay.addWidget(img)
        except Exception:  # noqa: BLE001 - the summary is enough
            log.debug("no key image for the text preview")
        self.info.setText(
            f"Text preview; the PDF ({len(self.pdf or b'') // 1024} kB) is ready to save"
        )

    def pdf_for(self, options: ExportOptions) -> bytes | None:
        """The previewed bytes when they were built with the same options, else None."""
        same = (
            options.anonymize,
            options.reader,
            options.include_gradcam,
            options.include_preprocess,
        ) == (
            self.options.anonymize,
            self.options.reader,
            self.options.include_gradcam,
            self.options.include_preprocess,
        )
        return self.pdf if same else None

    def save(self, path: str | Path | None = None) -> Any:
        """Save the previewed PDF to ``path`` (default: the export dialog's file)."""
        if self.pdf is None:
            return None
        return self.dialog.export_to(
            path or self.dialog.path.text(), "report", self.options, pdf=self.pdf
        )
