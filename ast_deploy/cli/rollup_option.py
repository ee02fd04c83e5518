"""``--rollup``: AudioSet parent classes in the output of predict, stream and batch, and with
``--events`` the events of those parents (docs/decisions.md, "Roll-up")."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

RollupOption = Annotated[
    Optional[str],
    typer.Option(
        "--rollup",
        help="AudioSet parent classes too: a depth (0 = the 7 top categories) or parent names ('Animal;Music'); "
        "with --events, events of the parents. Needs AudioSet labels.",
        rich_help_panel="Roll-up",
    ),
]


def model_rollup(labels: list[str], spec: str | None):
    """The :class:`~ast_deploy.ontology.Rollup` of a model's labels, or None without ``--rollup``.
    Call it before any audio is scored: a label set without ontology ids is refused in one line."""
    if spec is None:
        return None
    from ..ontology import rollup_for

    return rollup_for(labels, spec)


def with_rollup(doc: dict, prediction, rollup, aggregate: str) -> dict:
    """A ``Prediction.to_json`` dict with ``"rollup"`` for the file (from the ``aggregate`` scores)
    and for each window of its timeline."""
    if rollup is None:
        return doc
    scores = prediction.mean_scores if aggregate == "mean" else prediction.max_scores
    doc["rollup"] = rollup.to_json(scores)
    for window, window_scores in zip(doc["windows"], prediction.window_scores, strict=True):
        window["rollup"] = rollup.to_json(window_scores)
    return doc


def file_events(prediction, config, hop_seconds: float | None, rollup) -> list[dict]:
    """The events of one file as JSON: of the model's labels, or with ``--rollup`` of the parents
    (from the rolled-up window scores; each event also names its parent's ``mid``)."""
    from ..events import prediction_events

    if rollup is None:
        return [e.to_json() for e in prediction_events(prediction, config, hop_seconds)]
    return [rollup.event_json(e) for e in prediction_events(rollup.prediction(prediction), config, hop_seconds)]
