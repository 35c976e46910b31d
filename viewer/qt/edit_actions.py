"""Wiring of the reader-edit feature into the main window: Edit menu, tool actions, the dock.

``install_edit(win)`` is called once by :class:`viewer.qt.main_window.MainWindow` after its
actions exist. It adds

* the **Edit** menu: Undo (Ctrl+Z), Redo (Ctrl+Shift+Z and Ctrl+Y), Brush (Shift+B), Eraser
  (Shift+E), Fill (Shift+F), Add label…, Start editing, Close edits of this series…;
* the brush / eraser / fill handlers in ``state.tool_handlers`` (the slice views forward the mouse);
* the "Edit" dock (:class:`viewer.qt.edit_panel.EditPanel`).

Closing the window asks about unsaved edits through ``win.edit.confirm_close_all()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence

from viewer.qt.edit_panel import EditPanel
from viewer.qt.edit_sessions import EditController
from viewer.qt.edit_tools import install_tool_handlers

if TYPE_CHECKING:  # pragma: no cover
    from viewer.qt.main_window import MainWindow

__all__ = ["install_edit"]


def _action(
    win: MainWindow,
    name: str,
    text: str,
    slot: Any,
    keys: tuple[str, ...] = (),
    *,
    checkable: bool = False,
) -> QAction:
    a = QAction(text, win)
    a.setObjectName(f"action_{name}")
    if keys:
        a.setShortcuts([QKeySequence(k) for k in keys])
    a.setCheckable(checkable)
    a.setStatusTip(text.replace("&", ""))
    a.triggered.connect(lambda _checked=False: slot())
    win.addAction(a)  # shortcuts work while the views have the focus
    win.actions_by_name[name] = a
    return a


def install_edit(win: MainWindow) -> EditController:
    """Create the edit controller, its dock, menu and tool actions; returns the controller."""
    ctrl = EditController(win)
    install_tool_handlers(ctrl)
    st = win.state
    menu = win.menuBar().addMenu("&Edit")
    menu.setObjectName("menu_edit")
    view_menu = getattr(win, "view_menu", None)
    if view_menu is not None:  # File, Edit, View, ...
        win.menuBar().insertMenu(view_menu.menuAction(), menu)
    undo = _action(win, "undo", "&Undo edit", ctrl.undo, ("Ctrl+Z",))
    redo = _action(win, "redo", "&Redo edit", ctrl.redo, ("Ctrl+Shift+Z", "Ctrl+Y"))
    menu.addAction(undo)
    menu.addAction(redo)
    menu.addSeparator()
    nav = win.actions_by_name.get("tool_navigate")
    group = nav.actionGroup() if nav is not None else None
    for tool, text, key in (
        ("brush", "&Brush", "Shift+B"),
        ("eraser", "&Eraser", "Shift+E"),
        ("fill", "&Fill closed region", "Shift+F"),
    ):
        a = _action(
            win, f"tool_{tool}", text, lambda t=tool: st.set_tool(t), (key,), checkable=True
        )
        if group is not None:
            group.addAction(
                a
            )  # exclusive with navigate / ruler / ...; actions.py checks tool_<name>
        menu.addAction(a)
    menu.addSeparator()
    win.edit = ctrl
    panel = EditPanel(ctrl, win)
    win.edit_panel = panel
    menu.addAction(_action(win, "edit_add_label", "&Add label…", panel.add_label))
    menu.addAction(_action(win, "edit_start", "&Start editing this series", ctrl.start_editing))
    menu.addAction(
        _action(win, "edit_close", "&Close edits of this series…", ctrl.close_series_edits)
    )

    def update_undo(*_: Any) -> None:
        seg = ctrl.seg
        undo.setEnabled(seg is not None and seg.can_undo)
        redo.setEnabled(seg is not None and seg.can_redo)

    ctrl.changed.connect(update_undo)
    ctrl.session_changed.connect(update_undo)
    update_undo()
    ctrl.notice.connect(lambda msg: win.message(msg, 8000))
    win.add_dock("Edit", panel, Qt.DockWidgetArea.RightDockWidgetArea)
    return ctrl
