"""The sound-event options of ``predict --events`` and ``stream`` (docs/streaming.md, section 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .options import option_group

_EVENT_OPTIONS = [
    ("threshold", Optional[float], "--threshold", "On threshold of every label (default 0.5)."),
    ("thresholds", Optional[Path], "--thresholds", "CSV of label,on[,off] rows: per-label thresholds."),
    ("off_threshold", Optional[float], "--off-threshold", "Off threshold (hysteresis; default: the on threshold)."),
    ("min_duration", Optional[float], "--min-duration", "Drop events shorter than this (seconds; default 0)."),
    ("merge_gap", Optional[float], "--merge-gap", "Merge events of a label closer than this (seconds; default 0)."),
]


class EventOptions:
    """The event flags as given; :meth:`config` resolves them against a model's labels."""

    def __init__(self, **values):
        self.values = values

    @property
    def given(self) -> bool:
        return any(v is not None for v in self.values.values())

    def config(self, labels: list[str], model=None):
        """The :class:`EventConfig`; without ``--thresholds``, the thresholds file that the artifact
        directory ``model`` carries (``ast-deploy thresholds --store``), if any, is used."""
        from ..events import EventConfig
        from ..thresholds import default_event_thresholds

        v = self.values
        threshold = 0.5 if v["threshold"] is None else v["threshold"]
        per_label = default_event_thresholds(model, v["thresholds"], labels, v["off_threshold"])
        return EventConfig(
            threshold=threshold,
            off_threshold=v["off_threshold"],
            thresholds=per_label,
            min_duration=v["min_duration"] or 0.0,
            merge_gap=v["merge_gap"] or 0.0,
        )


# Add the event flags to a command and pass them on as one ``event_options: EventOptions``.
with_event_options = option_group(_EVENT_OPTIONS, "Events", "event_options", EventOptions)
