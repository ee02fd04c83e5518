"""The sound-event options of predict, stream, batch, thresholds and evaluate-events (docs/streaming.md, section 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .options import Opt, option_group

_EVENT_OPTIONS = [
    Opt("events", bool, "--events", "Sound events (onset, offset, peak); also on with any event option.", False),
    Opt("threshold", Optional[float], "--threshold", "On threshold of every label (default 0.5)."),
    Opt("thresholds", Optional[Path], "--thresholds", "CSV of label,on[,off] rows: per-label thresholds."),
    Opt("off_threshold", Optional[float], "--off-threshold", "Off threshold (hysteresis; default: the on threshold)."),
    Opt("min_duration", Optional[float], "--min-duration", "Drop events shorter than this (seconds; default 0)."),
    Opt("merge_gap", Optional[float], "--merge-gap", "Merge events of a label closer than this (seconds; default 0)."),
]


class EventOptions:
    """The event flags as given; :meth:`config` resolves them against a model's labels."""

    def __init__(self, **values):
        self.values = values

    @property
    def given(self) -> bool:
        """Any event option other than ``--events`` was given."""
        return any(v is not None for name, v in self.values.items() if name != "events")

    @property
    def wanted(self) -> bool:
        """Events are tracked: ``--events``, or any event option."""
        return bool(self.values.get("events")) or self.given

    @property
    def min_duration(self) -> float:
        return self.values.get("min_duration") or 0.0

    @property
    def merge_gap(self) -> float:
        return self.values.get("merge_gap") or 0.0

    def config(self, labels: list[str], model=None, rollup=None):
        """The :class:`EventConfig`; without ``--thresholds``, the thresholds file that the artifact
        directory ``model`` carries (``ast-deploy thresholds --store``), if any, is used.

        With ``rollup`` (``--rollup``: :class:`~ast_deploy.ontology.Rollup`) the events are those of
        its parent classes: ``--thresholds`` rows name parents, and a stored thresholds file (chosen
        for the model's own labels) does not apply."""
        from ..events import EventConfig
        from ..thresholds import default_event_thresholds

        if rollup is not None:
            labels, model = list(rollup.labels), None
        v = self.values
        threshold = 0.5 if v.get("threshold") is None else v["threshold"]
        per_label = default_event_thresholds(model, v.get("thresholds"), labels, v.get("off_threshold"))
        return EventConfig(
            threshold=threshold,
            off_threshold=v.get("off_threshold"),
            thresholds=per_label,
            min_duration=self.min_duration,
            merge_gap=self.merge_gap,
        )


def with_event_options(*names: str):
    """Add the event flags (all, or those ``names``) to a command and pass them on as one
    ``event_options: EventOptions``."""
    specs = [spec for spec in _EVENT_OPTIONS if not names or spec.name in names]
    return option_group(specs, "Events", "event_options", EventOptions)
