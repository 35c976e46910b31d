"""The Qt-free observable view state."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.state import HeatmapLayer, ImageLayer, LabelLayer, Measurement, ViewState, cut
from viewer.volume import Volume, VolumeMeta


def _vol(shape=(10, 20, 30)):
    return Volume(np.zeros(shape, np.int16), (2.0, 0.5, 0.5), meta=VolumeMeta(modality="CT"))


def test_set_volume_centres_cursor_and_emits():
    st = ViewState()
    events = []
    for ev in ("volume", "cursor", "window"):
        st.subscribe(ev, lambda ev=ev, **kw: events.append(ev))
    st.set_volume(_vol())
    assert st.cursor == (5, 10, 15)
    assert events == ["volume", "window", "cursor"]
    assert st.window == (40.0, 400.0)


def test_cursor_clamped_and_no_event_when_unchanged():
    st = ViewState()
    st.set_volume(_vol())
    seen = []
    st.subscribe("cursor", lambda cursor: seen.append(cursor))
    st.set_slice(0, 99)
    assert st.cursor[0] == 9
    st.set_slice(0, 99)
    assert len(seen) == 1
    st.step_slice(2, -100)
    assert st.cursor == (9, 10, 0)


def test_unsubscribe():
    st = ViewState()
    seen = []
    cb = lambda **kw: seen.append(kw)  # noqa: E731
    st.subscribe("tool", cb)
    st.set_tool("ruler")
    st.unsubscribe("tool", cb)
    st.set_tool("rect")
    assert len(seen) == 1
    with pytest.raises(ValueError):
        st.set_tool("laser")


def test_cut_axes():
    a = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    assert cut(a, 0, 1).shape == (3, 4)
    assert cut(a, 1, 2).shape == (2, 4)
    assert cut(a, 2, 3).shape == (2, 3)
    np.testing.assert_array_equal(cut(a, 2, 3), a[:, :, 3])


def test_layers_planes_and_visibility():
    st = ViewState()
    st.set_volume(_vol())
    labels = np.zeros((10, 20, 30), np.uint8)
    labels[5, 2:4, 2:4] = 1
    lab = LabelLayer("seg", labels, {1: (255, 0, 0)})
    st.set_layer(lab)
    st.set_layer(HeatmapLayer("cam", np.zeros((20, 30), np.float32), z=5))
    st.set_layer(ImageLayer("rgba", np.zeros((10, 20, 30, 4), np.uint8)))
    assert len(st.planes(0, 5)) == 3
    assert len(st.planes(0, 4)) == 2  # single-slice heatmap only on its slice
    assert len(st.planes(1, 3)) == 2
    lab.hidden.add(1)
    st.layer_changed("seg")
    pal = st.planes(0, 5)[0].palette
    assert (pal[1] >> 24) == 0  # hidden label: alpha 0
    lab.visible = False
    assert len(st.planes(0, 5)) == 2
    st.remove_layer("cam")
    assert "cam" not in st.layers


def test_measurements_stay_on_their_slice():
    st = ViewState()
    st.set_volume(_vol())
    m = st.add_measurement(Measurement("ruler", 0, 3, [(0, 0), (0, 10)]))
    assert st.measurements_on(0, 3) == [m]
    assert st.measurements_on(0, 4) == []
    st.remove_measurement(m.id)
    assert st.measurements == []


def test_failing_subscriber_does_not_stop_the_others():
    st = ViewState()
    seen = []

    def bad(**_):
        raise RuntimeError("boom")

    st.subscribe("tool", bad)
    st.subscribe("tool", lambda tool: seen.append(tool))
    with pytest.raises(RuntimeError, match="boom"):
        st.set_tool("ruler")
    assert seen == ["ruler"] and st.tool == "ruler"


def test_hide_all_overlays_keeps_layer_settings():
    st = ViewState()
    st.set_volume(_vol())
    st.set_layer(LabelLayer("seg", np.ones((10, 20, 30), np.uint8), {1: (255, 0, 0)}))
    seen = []
    st.subscribe("layers", lambda name: seen.append(name))
    st.set_overlays_hidden(True)
    assert st.planes(0, 0) == [] and st.layers["seg"].visible and seen == [""]
    st.set_overlays_hidden(False)
    assert len(st.planes(0, 0)) == 1
