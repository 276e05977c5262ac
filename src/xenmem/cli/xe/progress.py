"""Progress of long operations: a bar on a terminal's stderr, nothing when piped."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

__all__ = ["Progress"]


class Progress:
    """Shows a task's progress (0.0 to 1.0) on `stream` when it is a terminal."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = sys.stderr if stream is None else stream

    @contextmanager
    def bar(self, label: str) -> Iterator[Callable[[float], None]]:
        """A function to report progress with; the bar goes away when the block ends."""
        if not self._stream.isatty():
            yield lambda _fraction: None
            return
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
        )
        console = Console(file=self._stream)
        with RichProgress(*columns, console=console, transient=True) as rich:
            task = rich.add_task(label, total=1.0)
            yield lambda fraction: rich.update(task, completed=fraction)
