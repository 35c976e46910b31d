"""The Edit dock: correct the AI segmentation (reader edits, issue 8).

Active label (the result's labels plus "Add label…" for findings the model does not know), brush /
eraser with a size in mm, threshold paint (HU range), fill, island tools and clear (on the active
view's slice or the whole series), and the review part (:mod:`viewer.qt.edit_review`). The work is
done by :class:`viewer.masks.EditableSegmentation` through :class:`EditController`; this widget
only collects values. Slice operations act on the active view (``state.active_axis``) at the
crosshair; 3-D island tools run in a worker (``win.runner``, key ``"edit_islands"``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from viewer.errors import ViewerError
from viewer.qt.edit_review import ReviewPanel
from viewer.qt.edit_sessions import EditController

if TYPE_CHECKING:  # pragma: no cover
    from viewer.qt.workers import Job

__all__ = ["EditPanel", "TOOL_BUTTONS"]

log = logging.getLogger(__name__)
TOOL_BUTTONS = (
    ("navigate", "Navigate"),
    ("brush", "Brush"),
    ("eraser", "Eraser"),
    ("fill", "Fill"),
)
NEW_LABEL_COLORS = (
    (255, 0, 255),
    (0, 255, 255),
    (255, 128, 0),
    (128, 255, 0),
    (0, 128, 255),
    (255, 255, 0),
)


def _swatch(rgb: tuple[int, int, int]) -> QIcon:
    pm = QPixmap(12, 12)
    pm.fill(QColor(*rgb))
    return QIcon(pm)


class EditPanel(QWidget):
    """Tools and review of the reader's edits for the current series."""

    def __init__(self, controller: EditController, parent: QWidget | None = None):
        super().__init__(parent)
        self.ctrl = controller
        self.state = controller.state
        self.job: Job | None = None
        self.status = QLabel("", self)
        self.status.setObjectName("edit_status")
        self.status.setWordWrap(True)
        self.start_button = QPushButton("Start editing", self)
        self.start_button.setObjectName("edit_start")
        self.start_button.clicked.connect(self.ctrl.start_editing)
        self.close_button = QPushButton("Close edits…", self)
        self.close_button.setObjectName("edit_close")
        self.close_button.clicked.connect(self.ctrl.close_series_edits)
        self.saved_label = QLabel("", self)
        self.saved_label.setObjectName("edit_saved")
        # label chooser
        self.label_box = QComboBox(self)
        self.label_box.setObjectName("edit_label")
        self.label_box.currentIndexChanged.connect(self._label_chosen)
        self.add_label_button = QPushButton("Add label…", self)
        self.add_label_button.setObjectName("edit_add_label")
        self.add_label_button.clicked.connect(self.add_label)
        # tools
        self.tool_group = QButtonGroup(self)
        self.tool_buttons: dict[str, QToolButton] = {}
        tools = QHBoxLayout()
        for name, text in TOOL_BUTTONS:
            b = QToolButton(self)
            b.setText(text)
            b.setCheckable(True)
            b.setObjectName(f"edit_tool_{name}")
            b.clicked.connect(lambda _c=False, n=name: self.state.set_tool(n))
            self.tool_group.addButton(b)
            self.tool_buttons[name] = b
            tools.addWidget(b)
        self.size_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.size_slider.setObjectName("edit_size_slider")
        self.size_slider.setRange(1, 200)  # half-millimetres: 0.5 .. 100 mm
        self.size_spin = QDoubleSpinBox(self)
        self.size_spin.setObjectName("edit_size")
        self.size_spin.setRange(0.5, 100.0)
        self.size_spin.setSingleStep(0.5)
        self.size_spin.setDecimals(1)
        self.size_spin.setSuffix(" mm")
        self.size_slider.valueChanged.connect(lambda v: self.size_spin.setValue(v / 2.0))
        self.size_spin.valueChanged.connect(self._size_changed)
        self.hu_check = QCheckBox("Only within HU", self)
        self.hu_check.setObjectName("edit_hu")
        self.hu_lo, self.hu_hi = QSpinBox(self), QSpinBox(self)
        for sb, v in ((self.hu_lo, -100), (self.hu_hi, 300)):
            sb.setRange(-3000, 30000)
            sb.setSuffix(" HU")
            sb.setValue(v)
            sb.valueChanged.connect(self._options_changed)
        self.hu_check.toggled.connect(self._options_changed)
        self.erase_active = QCheckBox("Eraser removes only the active label", self)
        self.erase_active.setObjectName("edit_erase_active")
        self.erase_active.setChecked(True)
        self.erase_active.toggled.connect(self._options_changed)
        self.protect = QCheckBox("Do not paint over other labels", self)
        self.protect.setObjectName("edit_protect")
        self.protect.toggled.connect(self._options_changed)
        # region tools
        self.scope = QComboBox(self)
        self.scope.setObjectName("edit_scope")
        self.scope.addItem("This slice (active view)", "slice")
        self.scope.addItem("Whole series (3-D)", "series")
        self.scope.currentIndexChanged.connect(self._scope_changed)
        self.min_size = QDoubleSpinBox(self)
        self.min_size.setObjectName("edit_min_size")
        self.min_size.setRange(0.0, 1e6)
        self.min_size.setValue(10.0)
        self.remove_islands_button = QPushButton("Remove small islands", self)
        self.remove_islands_button.setObjectName("edit_remove_islands")
        self.remove_islands_button.clicked.connect(lambda: self.islands(keep_largest=False))
        self.keep_largest_button = QPushButton("Keep largest island", self)
        self.keep_largest_button.setObjectName("edit_keep_largest")
        self.keep_largest_button.clicked.connect(lambda: self.islands(keep_largest=True))
        self.clear_button = QPushButton("Clear label…", self)
        self.clear_button.setObjectName("edit_clear")
        self.clear_button.clicked.connect(self.clear_label)
        self.review = ReviewPanel(controller, self)
        self._build_layout(tools)
        self.size_spin.setValue(self.ctrl.options.size_mm)
        self._scope_changed()
        self.state.subscribe("tool", self._on_tool)
        self.ctrl.session_changed.connect(self.refresh)
        self.ctrl.changed.connect(lambda box: self.refresh() if box is None else None)
        self.ctrl.saved.connect(self._saved)
        self._on_tool(tool=self.state.tool)
        self.refresh()

    def _build_layout(self, tools: QHBoxLayout) -> None:
        top = QHBoxLayout()
        top.addWidget(self.start_button)
        top.addWidget(self.close_button)
        lab = QHBoxLayout()
        lab.addWidget(self.label_box, 1)
        lab.addWidget(self.add_label_button)
        size = QHBoxLayout()
        size.addWidget(self.size_slider, 1)
        size.addWidget(self.size_spin)
        hu = QHBoxLayout()
        hu.addWidget(self.hu_check)
        hu.addWidget(self.hu_lo)
        hu.addWidget(QLabel("to", self))
        hu.addWidget(self.hu_hi)
        form = QFormLayout()
        form.addRow("Label", lab)
        form.addRow("Tool", tools)
        form.addRow("Size", size)
        form.addRow("Threshold", hu)
        form.addRow("", self.erase_active)
        form.addRow("", self.protect)
        region = QGroupBox("Islands and clear (active label)", self)
        g = QGridLayout(region)
        g.addWidget(QLabel("Scope", region), 0, 0)
        g.addWidget(self.scope, 0, 1, 1, 2)
        self.min_size_label = QLabel("Smaller than", region)
        g.addWidget(self.min_size_label, 1, 0)
        g.addWidget(self.min_size, 1, 1)
        g.addWidget(self.remove_islands_button, 1, 2)
        g.addWidget(self.keep_largest_button, 2, 1)
        g.addWidget(self.clear_button, 2, 2)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.status)
        lay.addLayout(top)
        lay.addLayout(form)
        lay.addWidget(region)
        lay.addWidget(self.review, 1)
        lay.addWidget(self.saved_label)

    # ------------------------------------------------------------------ state → widgets
    def refresh(self) -> None:
        seg, vol = self.ctrl.seg, self.state.volume
        editing = seg is not None
        if vol is None:
            self.status.setText("Open a series to edit its segmentation.")
        elif editing:
            s = self.ctrl.session
            how = (
                "restored autosave"
                if s.restored
                else ("AI result" if self.ctrl.result_layer() else "empty map")
            )
            self.status.setText(
                f"Editing ({how}). Undo Ctrl+Z, redo Ctrl+Shift+Z. Edits are autosaved."
            )
        elif self.ctrl.result_layer() is not None:
            self.status.setText(
                "Choose a label and a tool: the first edit starts editing the shown AI result "
                "(as thresholded now)."
            )
        else:
            self.status.setText(
                "No segmentation yet: run one, or press Start editing to draw from scratch."
            )
        self.start_button.setEnabled(vol is not None and not editing)
        self.close_button.setEnabled(editing)
        for w in (
            self.add_label_button,
            self.label_box,
            self.remove_islands_button,
            self.keep_largest_button,
            self.clear_button,
        ):
            w.setEnabled(vol is not None)
        # before the first edit the chooser lists the shown result's labels (editing starts on use)
        if seg is not None:
            labels = {v: (info.name, info.color) for v, info in seg.labels.items()}
        else:
            res = self.ctrl.result_layer()
            labels = (
                {}
                if res is None
                else {
                    v: (res.names.get(v, f"label {v}"), c)
                    for v, c in sorted(res.colors.items())
                    if v != 0
                }
            )
        self.label_box.blockSignals(True)
        self.label_box.clear()
        for v, (name, color) in labels.items():
            self.label_box.addItem(_swatch(color), f"{v}: {name}", v)
        if self.ctrl.options.label not in labels:
            self.ctrl.options.label = next(iter(labels), None)
        self.label_box.setCurrentIndex(max(self.label_box.findData(self.ctrl.options.label), 0))
        self.label_box.blockSignals(False)
        self.review.refresh()

    def _on_tool(self, tool: str = "navigate", **_: Any) -> None:
        b = self.tool_buttons.get(tool)
        if b is not None:
            b.setChecked(True)
        else:  # another tool (ruler, pan ...): no edit button is checked
            self.tool_group.setExclusive(False)
            for btn in self.tool_buttons.values():
                btn.setChecked(False)
            self.tool_group.setExclusive(True)

    def _saved(self, key: str, revision: int) -> None:
        import time

        if key == self.state.series_key:
            self.saved_label.setText(f"Autosaved {time.strftime('%H:%M:%S')} (revision {revision})")

    # ------------------------------------------------------------------ widgets → options
    def _label_chosen(self, _i: int) -> None:
        v = self.label_box.currentData()
        self.ctrl.options.label = None if v is None else int(v)

    def _size_changed(self, mm: float) -> None:
        self.ctrl.options.size_mm = float(mm)
        self.size_slider.blockSignals(True)
        self.size_slider.setValue(round(mm * 2))
        self.size_slider.blockSignals(False)
        for v in self.ctrl.win.grid.views:  # the brush cursor shows the new size
            v.update()

    def _options_changed(self, *_: Any) -> None:
        o = self.ctrl.options
        lo, hi = sorted((self.hu_lo.value(), self.hu_hi.value()))
        o.hu_range = (float(lo), float(hi)) if self.hu_check.isChecked() else None
        o.erase_active_only = self.erase_active.isChecked()
        o.protect_others = self.protect.isChecked()

    def _scope_changed(self, *_: Any) -> None:
        three_d = self.scope.currentData() == "series"
        self.min_size.setSuffix(" mm³" if three_d else " mm²")

    def set_size(self, mm: float) -> None:
        self.size_spin.setValue(mm)

    # ------------------------------------------------------------------ actions
    def add_label(self) -> int | None:
        """Ask for a name and colour; add a reader label and make it active. Returns its value."""
        seg = self.ctrl.ensure_seg()
        if seg is None:
            return None
        p = self.ctrl.prompter
        name = p.text("label_name", "Add label", "Name of the new label (finding):")
        if not name or not name.strip():
            return None
        n_reader = sum(1 for i in seg.labels.values() if i.source == "reader")
        color = p.color(
            "label_color",
            "Colour of the new label",
            NEW_LABEL_COLORS[n_reader % len(NEW_LABEL_COLORS)],
        )
        if color is None:
            return None
        try:
            info = seg.add_label(name.strip(), color)
        except ViewerError as exc:
            self.ctrl.win.errors.present(exc, title="Add label")
            return None
        self.ctrl.options.label = info.value
        self.refresh()
        return info.value

    def _slice(self) -> tuple[int | None, int | None]:
        if self.scope.currentData() == "series":
            return None, None
        axis = self.state.active_axis
        return axis, self.state.cursor[axis]

    def islands(self, *, keep_largest: bool) -> Job | None:
        """Remove small islands / keep the largest island of the active label (slice: at once;
        series: in a worker)."""
        seg, label = self.ctrl.ensure_seg(), self.ctrl.options.label
        if seg is None or label is None:
            return None
        axis, index = self._slice()
        min_size = self.min_size.value()

        def fn(progress: Any = None, cancel: Any = None) -> Any:
            if keep_largest:
                return seg.keep_largest_island(
                    label, axis=axis, index=index, progress=progress, cancel=cancel
                )
            return seg.remove_small_islands(
                label, min_size, axis=axis, index=index, progress=progress, cancel=cancel
            )

        if axis is not None:
            try:
                fn()
            except ViewerError as exc:
                self.ctrl.win.errors.present(exc, title="Islands")
            return None
        self.job = job = self.ctrl.win.runner.submit(fn, name="edit islands", key="edit_islands")
        job.error.connect(
            lambda exc, tb: self.ctrl.win.errors.present(exc, title="Islands", details=tb)
        )
        return job

    def clear_label(self) -> None:
        """Clear the active label on the active view's slice, or (confirmed) in the whole series."""
        seg, label = self.ctrl.ensure_seg(), self.ctrl.options.label
        if seg is None or label is None:
            return
        axis, index = self._slice()
        name = seg.labels[label].name
        if axis is None:
            ans = self.ctrl.prompter.choose(
                "clear",
                "Clear label",
                f"Remove {name!r} from the whole series? (Undo brings it back.)",
                ["Clear", "Cancel"],
                default="Clear",
                escape="Cancel",
            )
            if ans != "Clear":
                return
        seg.clear_label(label, axis=axis, index=index)
