"""Report writers: they see only records and the summary, never the checking."""

from __future__ import annotations

from typing import IO, Protocol

from ..results import Record, Summary


class Reporter(Protocol):
    def start(self, header: dict) -> None: ...
    def record(self, record: Record) -> None: ...
    def finish(self, summary: Summary) -> None: ...


def make_reporter(kind: str, out: IO[str], err: IO[str], verbose: bool) -> Reporter:
    from .jsonl import JsonLinesReporter
    from .text import TextReporter
    if kind == "json":
        return JsonLinesReporter(out)
    return TextReporter(out, err, verbose)
