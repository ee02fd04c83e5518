"""Progress bars on stderr for the verbs that score audio files (predict, thresholds, evaluate-events)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from .app import err_console

Report = Callable[[str, int, int], None]  # (what, done, total)


@contextlib.contextmanager
def progress_bars(enabled: bool) -> Iterator[Report | None]:
    """A rich bar per name (done / total, time left) on stderr: yields ``report(name, done, total)``,
    or None when not ``enabled``. The bars go when the block ends."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as bars:
        tasks: dict[str, int] = {}

        def report(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bars.add_task(name, total=total)
            bars.update(tasks[name], completed=done, total=total)

        yield report


def window_progress(report: Report | None) -> Report | None:
    """``Classifier.predict``'s ``progress(source, windows done, windows expected)`` as one bar per file."""
    if report is None:
        return None
    return lambda source, done, total: report(f"{Path(source).name} windows", done, total)
