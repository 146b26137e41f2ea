"""What the CLI prints: tables and progress for people, or JSON on stdout for scripts (``--json``)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from .client import CliError

#: a plain progress line is repeated at most this often while only the amount done changes
PLAIN_INTERVAL_S = 5.0


def _lead() -> tuple[ProgressColumn, ...]:
    """The columns every display starts with: what it is, and the bar (new ones each time: columns cache cells)."""
    return TextColumn("{task.description}"), BarColumn()


class ProgressMode(StrEnum):
    """How progress is shown on stderr (``--progress``)."""

    AUTO = "auto"  # a live bar on a terminal, plain lines otherwise (pipes, CI logs)
    BAR = "bar"  # a live bar even when stderr is not a terminal
    PLAIN = "plain"  # a line of text per change: logs, CI, scripts that read stderr
    NONE = "none"  # nothing


class LineProgress(Progress):
    """A progress display written as lines of text (no cursor movement): a line when a task starts, when its
    description, stage or total changes, when it ends, and otherwise at most every ``PLAIN_INTERVAL_S``."""

    def __init__(self, *columns: ProgressColumn, console: Console) -> None:
        super().__init__(*columns, console=console, disable=True)
        self._shown: dict[TaskID, tuple[float, Any, float]] = {}  # when, what, how much was done

    def line(self, task_id: TaskID) -> str:
        """The task's columns as one line of plain text."""
        task = self._tasks[task_id]
        parts: list[str] = []
        for column in self.columns:
            cell = column.format(task=task) if isinstance(column, str) else column(task)
            text = cell.plain if isinstance(cell, Text) else str(cell)
            if text.strip():
                parts.append(text.strip())
        return " ".join(parts)

    def _emit(self, task_id: TaskID, *, final: bool = False) -> None:
        task = self._tasks[task_id]
        what = (task.description, task.total, tuple(sorted(task.fields.items())), task.finished)
        now = time.monotonic()
        last = self._shown.get(task_id)
        if last is not None:
            when, shown, done = last
            if shown == what and (done == task.completed or (now - when < PLAIN_INTERVAL_S and not final)):
                return
        self._shown[task_id] = (now, what, task.completed)
        self.console.print(self.line(task_id), markup=False, highlight=False, soft_wrap=True)

    def add_task(self, *args: Any, **kwargs: Any) -> TaskID:
        task_id = super().add_task(*args, **kwargs)
        self._emit(task_id)
        return task_id

    def update(self, task_id: TaskID, *args: Any, **kwargs: Any) -> None:
        super().update(task_id, *args, **kwargs)
        self._emit(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._emit(task_id)

    def reset(self, task_id: TaskID, *args: Any, **kwargs: Any) -> None:
        super().reset(task_id, *args, **kwargs)
        self._emit(task_id)

    def stop(self) -> None:
        for task_id in list(self._tasks):
            self._emit(task_id, final=True)
        super().stop()


class Output:
    """Results go to stdout (JSON with ``--json``); progress, notes and errors to stderr, so stdout stays parseable."""

    def __init__(self, *, as_json: bool, progress: ProgressMode = ProgressMode.AUTO) -> None:
        self.as_json = as_json
        self.err = Console(
            stderr=True, highlight=False, force_terminal=True if progress is ProgressMode.BAR else None
        )
        if progress is ProgressMode.AUTO:
            progress = ProgressMode.BAR if self.err.is_terminal else ProgressMode.PLAIN
        self.progress_mode = progress
        self.out = Console(highlight=False, soft_wrap=True)

    def result(self, data: Any, render: Callable[[Any], None] | None = None) -> None:
        """The command's result: JSON, or ``render`` (default: pretty JSON) for a person."""
        if self.as_json:
            self.json_line(data)
        elif render is not None:
            render(data)
        else:
            self.out.print_json(data=data)

    def json_line(self, data: Any) -> None:
        """One JSON document on one line of stdout, flushed (a stream of them is NDJSON)."""
        sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
        sys.stdout.flush()

    def note(self, message: str) -> None:
        """A remark for a person (stderr; kept out of ``--json`` output)."""
        self.err.print(message)

    def error(self, error: CliError, *, in_result: bool = False) -> None:
        """A failure: a line on stderr, and with ``--json`` ``{"error": {code, message}}`` on stdout unless the
        result already printed holds it (stdout carries exactly one JSON document either way)."""
        if self.as_json and not in_result:
            self.json_line(error.as_json())
        self.err.print(f"[red]error:[/red] {error.message}", markup=True, highlight=False)

    def table(self, columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str = "") -> None:
        """A table on stdout."""
        t = Table(title=title or None)
        for c in columns:
            t.add_column(c)
        for row in rows:
            t.add_row(*("" if v is None else str(v) for v in row))
        self.out.print(t)

    @property
    def live(self) -> bool:
        """Whether displays are redrawn in place (a terminal, or ``--progress bar``) rather than written as lines."""
        return self.progress_mode is ProgressMode.BAR

    def progress(self, *columns: ProgressColumn) -> Progress:
        """A progress display on stderr with ``columns``: a live bar, plain lines (no bar column) or nothing."""
        if self.progress_mode is ProgressMode.PLAIN:
            return LineProgress(*(c for c in columns if not isinstance(c, BarColumn)), console=self.err)
        return Progress(*columns, console=self.err, disable=self.progress_mode is ProgressMode.NONE)

    def transfer_progress(self) -> Progress:
        """A progress display of byte transfers, one bar per file: percent, bytes, speed, ETA (stderr)."""
        return self.progress(
            *_lead(), TaskProgressColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn()
        )

    def job_progress(self) -> Progress:
        """A progress display of jobs (percent, stage), one bar per job (stderr)."""
        return self.progress(
            *_lead(), TaskProgressColumn(), TextColumn("{task.fields[stage]}"), TimeRemainingColumn()
        )

    def count_progress(self) -> Progress:
        """A progress display of items ended out of a total, with a stage and the server's ETA (``eta`` field)."""
        return self.progress(
            *_lead(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[stage]}"),
            TextColumn("eta {task.fields[eta]}"),
        )
