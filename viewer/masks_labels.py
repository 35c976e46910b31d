"""The label table of an editable segmentation: names, colours, provenance of each label, the
reader's accept/reject decision per label and the review state of the whole result. No Qt.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from viewer.errors import ViewerError

__all__ = [
    "Decision",
    "EditError",
    "LabelInfo",
    "LabelSource",
    "Provenance",
    "ReviewState",
    "label_info_from",
]


class EditError(ViewerError):
    """An edit that cannot be done as asked (unknown label, open region, ...); nothing changed."""


class LabelSource(StrEnum):
    """Who defined a label: the AI model's label table, or the reader (a new finding)."""

    AI = "ai"
    READER = "reader"


class Decision(StrEnum):
    """The reader's decision on one label of the AI result."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class ReviewState(StrEnum):
    """Review state of the whole segmentation."""

    NOT_REVIEWED = "not_reviewed"
    REVIEWED = "reviewed"
    NEEDS_ATTENTION = "needs_attention"


class Provenance:
    """Per-voxel provenance codes returned by ``provenance_plane`` (uint8).

    ``AS_AI``: the voxel holds what the AI proposed (``current == ai``);
    ``ADDED``: the reader painted a label where the AI had background (``ai == 0 != current``);
    ``REMOVED``: the reader erased an AI label (``current == 0 != ai``);
    ``RELABELLED``: the reader replaced one label with another (``0 != ai != current != 0``).
    """

    AS_AI = 0
    ADDED = 1
    REMOVED = 2
    RELABELLED = 3
    NAMES = ("as_ai", "added", "removed", "relabelled")


@dataclass
class LabelInfo:
    """One entry of the label table.

    Attributes
    ----------
    value : label value in the uint8 map (1..255; 0 is background and not in the table).
    name : display name.
    color : (r, g, b) 0..255.
    source : ``"ai"`` for labels of the model's table, ``"reader"`` for labels the reader added.
    decision : the reader's accept / reject decision for this label.
    """

    value: int
    name: str
    color: tuple[int, int, int]
    source: LabelSource = LabelSource.AI
    decision: Decision = Decision.PENDING

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "name": self.name, "color": list(self.color),
                "source": str(self.source), "decision": str(self.decision)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LabelInfo:
        return cls(int(d["value"]), str(d["name"]), _color(d["color"]),
                   LabelSource(d.get("source", "ai")), Decision(d.get("decision", "pending")))


def _color(c: Any) -> tuple[int, int, int]:
    try:
        rgb = tuple(int(v) for v in c)
    except (TypeError, ValueError):
        rgb = ()
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise EditError(f"label colour must be three integers 0..255 (r, g, b), got {c!r}")
    return rgb  # type: ignore[return-value]


def label_info_from(obj: Any, source: LabelSource = LabelSource.AI) -> LabelInfo:
    """A :class:`LabelInfo` from a LabelInfo, an ``inference.package.LabelSpec``-like object
    (``value``, ``name``, ``color`` attributes) or a dict with those keys."""
    if isinstance(obj, LabelInfo):
        return LabelInfo(obj.value, obj.name, obj.color, obj.source, obj.decision)
    if isinstance(obj, dict):
        return LabelInfo.from_json({"source": str(source), **obj})
    value, name, color = obj.value, obj.name, obj.color
    if not 1 <= int(value) <= 255:
        raise EditError(f"label value must be 1..255 (0 is background), got {value!r} for {name!r}")
    return LabelInfo(int(value), str(name), _color(color), source)
