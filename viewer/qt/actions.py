"""Menus, toolbar and keyboard shortcuts of the main window (listed in Help → Shortcuts)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QMessageBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from viewer.display import CT_PRESETS, default_window
from viewer.qt.settings import recent_paths

if TYPE_CHECKING:  # pragma: no cover
    from viewer.qt.main_window import MainWindow

__all__ = ["build_actions", "shortcut_table"]


def _act(
    win: MainWindow,
    reg: dict,
    name: str,
    text: str,
    slot: Callable[[], Any],
    shortcut: str | None = None,
    *,
    checkable: bool = False,
    tip: str = "",
) -> QAction:
    a = QAction(text, win)
    a.setObjectName(f"action_{name}")
    if shortcut:
        a.setShortcut(QKeySequence(shortcut))
    a.setCheckable(checkable)
    a.setStatusTip(tip or text.replace("&", ""))
    a.triggered.connect(lambda checked=False: slot())
    win.addAction(a)  # shortcuts work even when the menu bar is hidden
    reg[name] = a
    return a


def _fit(win: MainWindow) -> None:
    ax = win.state.active_axis
    win.state.set_zoom(ax, 1.0, (0.0, 0.0))


def _one_to_one(win: MainWindow) -> None:
    v = win.grid.active_view()
    if v.geom is None:
        return
    cur = v.zoom_percent()
    win.state.set_zoom(v.axis, win.state.zoom[v.axis] * 100.0 / max(cur, 1e-6))


def _preset(win: MainWindow, center: float, width: float, name: str) -> None:
    win.state.set_window(center, width)
    win.message(f"Window {name}: W {width:.0f} L {center:.0f}")


def _default_window(win: MainWindow) -> None:
    if win.state.volume is not None:
        c, w = default_window(win.state.volume)
        _preset(win, c, w, "default")


def build_actions(win: MainWindow) -> dict[str, Any]:
    reg: dict[str, Any] = {}
    mb = win.menuBar()
    st = win.state

    # File
    m = mb.addMenu("&File")
    m.addAction(
        _act(win, reg, "open_folder", "Open &folder…", lambda: _open(win, "folder"), "Ctrl+O")
    )
    m.addAction(
        _act(win, reg, "open_file", "Open f&ile…", lambda: _open(win, "file"), "Ctrl+Shift+O")
    )
    m.addAction(
        _act(
            win,
            reg,
            "open_dicomdir",
            "Open &DICOMDIR…",
            lambda: _open(win, "dicomdir"),
            "Ctrl+Alt+O",
        )
    )
    recent = m.addMenu("&Recent studies")
    recent.setObjectName("menu_recent")

    def refresh_recent(items: list[str] | None = None) -> None:
        recent.clear()
        for p in items if items is not None else recent_paths(win.settings):
            recent.addAction(p, lambda p=p: win.open_path(p))
        recent.setEnabled(not recent.isEmpty())

    refresh_recent()
    reg["_recent_refresh"] = refresh_recent
    m.addSeparator()
    m.addAction(_act(win, reg, "cancel", "&Cancel running job", win.loader.cancel, "Ctrl+."))
    m.addAction(_act(win, reg, "quit", "&Quit", win.close, "Ctrl+Q"))

    # View
    v = mb.addMenu("&View")
    win.view_menu = v
    g = QActionGroup(win)
    for name, text, key, layout in (
        ("layout_1x1", "&1x1 layout", "Ctrl+1", "1x1"),
        ("layout_2x2", "&2x2 MPR layout", "Ctrl+2", "2x2"),
    ):
        a = _act(win, reg, name, text, lambda lay=layout: st.set_layout(lay), key, checkable=True)
        g.addAction(a)
        v.addAction(a)
    st.subscribe(
        "layout",
        lambda **_: (
            reg["layout_1x1"].setChecked(st.layout == "1x1"),
            reg["layout_2x2"].setChecked(st.layout == "2x2"),
        ),
    )
    for axis, (name, key) in enumerate(
        (("Axial", "Alt+1"), ("Coronal", "Alt+2"), ("Sagittal", "Alt+3"))
    ):
        v.addAction(
            _act(
                win,
                reg,
                f"view_{name.lower()}",
                f"{name} view",
                lambda a=axis: st.set_layout(active_axis=a),
                key,
            )
        )
    v.addSeparator()
    v.addAction(_act(win, reg, "fit", "&Fit to window", lambda: _fit(win), "F"))
    v.addAction(_act(win, reg, "one_to_one", "1:1 &pixels", lambda: _one_to_one(win), "Ctrl+0"))
    hide = _act(
        win,
        reg,
        "hide_identity",
        "&Hide patient identity",
        lambda: st.set_hide_identity(not st.hide_identity),
        "Ctrl+I",
        checkable=True,
    )
    st.subscribe("identity", lambda hide=False, **_: reg["hide_identity"].setChecked(hide))
    v.addAction(hide)
    v.addAction(_act(win, reg, "hide_overlays", "Hide &overlays", lambda: st.set_overlays_hidden(
        not st.overlays_hidden), "O", checkable=True))  # fmt: skip
    v.addSeparator()
    v.addAction(_act(win, reg, "cine", "Play/stop &cine", win.toggle_cine, "Space"))
    v.addAction(
        _act(
            win,
            reg,
            "cine_faster",
            "Cine faster",
            lambda: win.set_cine_fps(win.cine_fps * 1.5),
            "]",
        )
    )
    v.addAction(
        _act(
            win,
            reg,
            "cine_slower",
            "Cine slower",
            lambda: win.set_cine_fps(win.cine_fps / 1.5),
            "[",
        )
    )
    v.addSeparator()
    for dock in win.docks.values():  # docks added later are appended by MainWindow.add_dock
        v.addAction(dock.toggleViewAction())

    # Window presets
    w = mb.addMenu("&Window")
    w.addAction(
        _act(
            win, reg, "window_default", "Default / header window", lambda: _default_window(win), "0"
        )
    )
    for i, p in enumerate(CT_PRESETS):
        w.addAction(
            _act(
                win,
                reg,
                f"window_{p.name.lower()}",
                f"{p.name} (W {p.width:.0f} L {p.center:.0f})",
                lambda p=p: _preset(win, p.center, p.width, p.name),
                str(i + 1),
            )
        )

    def header_windows(**_: Any) -> None:
        for a in [a for a in w.actions() if a.objectName().startswith("header_window")]:
            w.removeAction(a)
        vol = st.volume
        for j, p in enumerate(vol.meta.window_presets if vol is not None else []):
            a = QAction(f"Header: {p.name or j + 1} (W {p.width:.0f} L {p.center:.0f})", w)
            a.setObjectName(f"header_window_{j}")
            a.triggered.connect(
                lambda _c=False, p=p: _preset(win, p.center, p.width, p.name or "header")
            )
            w.addAction(a)

    st.subscribe("volume", header_windows)

    # Tools
    t = mb.addMenu("&Tools")
    tg = QActionGroup(win)
    for tool, text, key in (
        ("navigate", "&Navigate / crosshair", "Esc"),
        ("window", "&Window/level drag", "W"),
        ("pan", "&Pan", "P"),
        ("zoom", "&Zoom drag", "Z"),
        ("ruler", "&Ruler (mm)", "M"),
        ("rect", "Rectangle &ROI", "B"),
        ("ellipse", "&Ellipse ROI", "E"),
    ):
        a = _act(
            win, reg, f"tool_{tool}", text, lambda tool=tool: st.set_tool(tool), key, checkable=True
        )
        a.setChecked(tool == "navigate")
        tg.addAction(a)
        t.addAction(a)
    st.subscribe("tool", lambda tool="navigate", **_: reg[f"tool_{tool}"].setChecked(True))
    t.addSeparator()
    t.addAction(
        _act(
            win,
            reg,
            "delete_measurement",
            "&Delete measurement",
            win.measurements.delete_selected,
            "Del",
        )
    )
    t.addSeparator()
    t.addAction(_act(win, reg, "segment_run", "Run &segmentation", win.segmentation.run, "Ctrl+R"))
    t.addAction(
        _act(
            win,
            reg,
            "segment_cancel",
            "Cancel segmentation",
            win.segmentation.cancel,
            "Ctrl+Shift+R",
        )
    )

    # Help
    h = mb.addMenu("&Help")
    h.addAction(
        _act(
            win, reg, "shortcuts", "&Keyboard shortcuts", lambda: _shortcuts_dialog(win, reg), "F1"
        )
    )
    h.addAction(
        _act(
            win,
            reg,
            "about",
            "&About",
            lambda: QMessageBox.about(
                win,
                "About Clinical Viewer",
                "Clinical Viewer — offline DICOM viewer with ONNX segmentation.\n"
                "Not a medical device; for research and education.",
            ),
        )
    )

    tb = win.addToolBar("Tools")
    tb.setObjectName("toolbar_tools")
    for name in (
        "open_folder",
        "layout_1x1",
        "layout_2x2",
        "fit",
        "hide_identity",
        "tool_navigate",
        "tool_window",
        "tool_ruler",
        "tool_rect",
        "tool_ellipse",
        "cine",
    ):
        tb.addAction(reg[name])
    return reg


def shortcut_table(reg: dict[str, Any]) -> list[tuple[str, str]]:
    """(shortcut, action text) for every action with a shortcut."""
    native = QKeySequence.SequenceFormat.NativeText
    rows = [
        (a.shortcut().toString(native), a.text().replace("&", ""))
        for a in reg.values()
        if isinstance(a, QAction) and not a.shortcut().isEmpty()
    ]
    rows += [
        ("Wheel / ↑ ↓ / PgUp PgDn / Home End", "Previous / next slice"),
        ("Ctrl+Wheel", "Zoom"),
        ("Right-drag", "Window/level"),
        ("Middle-drag", "Pan"),
        ("Left-click", "Move crosshair (other views follow)"),
        ("Double-click", "Maximise / restore view"),
    ]
    return rows


def _shortcuts_dialog(win: MainWindow, reg: dict[str, Any]) -> None:
    rows = shortcut_table(reg)
    dlg = QDialog(win)
    dlg.setWindowTitle("Keyboard shortcuts")
    table = QTableWidget(len(rows), 2, dlg)
    table.setHorizontalHeaderLabels(["Keys", "Action"])
    for i, (k, text) in enumerate(rows):
        table.setItem(i, 0, QTableWidgetItem(k))
        table.setItem(i, 1, QTableWidgetItem(text))
    table.resizeColumnsToContents()
    lay = QVBoxLayout(dlg)
    lay.addWidget(table)
    dlg.resize(520, 560)
    dlg.show()


def _open(win: MainWindow, kind: str) -> None:
    start = (recent_paths(win.settings) or [""])[0]
    if kind == "folder":
        path = QFileDialog.getExistingDirectory(win, "Open DICOM folder", start)
    elif kind == "dicomdir":
        path, _ = QFileDialog.getOpenFileName(
            win, "Open DICOMDIR", start, "DICOMDIR (DICOMDIR);;All files (*)"
        )
    else:
        path, _ = QFileDialog.getOpenFileName(
            win, "Open DICOM file or zip", start, "DICOM (*.dcm *.DCM *.ima *.zip);;All files (*)"
        )
    if path:
        win.open_path(path)
