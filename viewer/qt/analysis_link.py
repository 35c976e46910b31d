"""Linked secondary views for the analysis docks (preprocessing, comparison). No algorithms here.

A *follower* :class:`viewer.state.ViewState` shows the same volume as the main state but its own
overlay layers (a filtered slice, engine A's mask, a difference map …). :class:`StateLink` keeps
cursor (scroll), window and zoom/pan of the two states equal in both directions, so a
:class:`viewer.qt.slice_view.SliceView` on the follower moves with the main views and the other
way round. :class:`SliceImageLayer` is an :class:`viewer.state.ImageLayer` that holds one axial
plane only (``rgba [y, x, 4]`` valid on slice ``z``), so a preview never costs a whole volume.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from viewer.display import RGBAPlane
from viewer.state import ImageLayer, ViewState

__all__ = ["SliceImageLayer", "StateLink", "follower_state"]


@dataclass(eq=False)
class SliceImageLayer(ImageLayer):
    """An RGBA overlay ``uint8 [y, x, 4]`` (RGB order) of axial slice ``z`` only."""

    z: int = -1

    def plane(self, axis: int, index: int) -> RGBAPlane | None:
        if not self.visible or axis != 0 or index != self.z:
            return None
        return RGBAPlane(self.rgba, self.opacity)


class StateLink:
    """Keep ``follower`` in step with ``master``: volume, cursor, window, zoom and pan (axis 0-2).

    Both directions: scrolling or zooming in either view moves the other; the hide-identity flag
    follows the master. ``detach()`` stops it.
    The follower's layers are its own (set_volume on the master clears them through the link).
    """

    def __init__(self, master: ViewState, follower: ViewState) -> None:
        self.master = master
        self.follower = follower
        self._busy = False
        self._subs = [
            (master, "volume", self._m_volume),
            (master, "cursor", lambda **_: self._copy(master, follower, "cursor")),
            (master, "window", lambda **_: self._copy(master, follower, "window")),
            (master, "view", lambda axis=-1, **_: self._copy(master, follower, "view", axis)),
            (master, "identity", lambda hide=False, **_: follower.set_hide_identity(hide)),
            (follower, "cursor", lambda **_: self._copy(follower, master, "cursor")),
            (follower, "window", lambda **_: self._copy(follower, master, "window")),
            (follower, "view", lambda axis=-1, **_: self._copy(follower, master, "view", axis)),
        ]
        for st, ev, cb in self._subs:
            st.subscribe(ev, cb)
        self._m_volume(volume=master.volume)

    def detach(self) -> None:
        for st, ev, cb in self._subs:
            st.unsubscribe(ev, cb)
        self._subs = []

    def _m_volume(self, volume: Any = None, **_: Any) -> None:
        if self.follower.volume is volume and self.follower.series_key == self.master.series_key:
            return
        self._busy = True
        try:
            self.follower.set_volume(volume, self.master.series_key)
            self.follower.cursor = self.master.cursor
            self.follower.window = self.master.window
            self.follower.emit("cursor", cursor=self.follower.cursor)
            self.follower.emit("window", window=self.follower.window)
        finally:
            self._busy = False

    def _copy(self, src: ViewState, dst: ViewState, what: str, axis: int = -1) -> None:
        if self._busy or src.volume is None or dst.volume is not src.volume:
            return
        self._busy = True
        try:
            if what == "cursor":
                dst.set_cursor(*src.cursor)
            elif what == "window":
                dst.set_window(*src.window)
            elif 0 <= axis <= 2:
                dst.set_zoom(axis, src.zoom[axis], src.pan[axis])
        finally:
            self._busy = False


def follower_state(master: ViewState) -> tuple[ViewState, StateLink]:
    """A new state linked to ``master`` (see :class:`StateLink`)."""
    st = ViewState()
    st.hide_identity = master.hide_identity  # kept in step by the link afterwards
    return st, StateLink(master, st)


def rgba_from_gray(img: np.ndarray, alpha: int = 255) -> np.ndarray:
    """uint8 ``[y, x]`` → RGBA ``[y, x, 4]`` grey with constant ``alpha``."""
    out = np.empty((*img.shape, 4), np.uint8)
    out[..., :3] = img[..., None]
    out[..., 3] = alpha
    return out


def rgba_from_rgb(rgb: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """RGB ``[y, x, 3]`` → RGBA; alpha 255 where ``mask`` (default everywhere), else 0."""
    out = np.empty((*rgb.shape[:2], 4), np.uint8)
    out[..., :3] = rgb
    out[..., 3] = 255 if mask is None else np.where(mask, 255, 0).astype(np.uint8)
    return out
