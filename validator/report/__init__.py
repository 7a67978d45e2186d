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


class Tee:
    """Feeds every reporter given (None skipped) in order: one stream of records, several reports."""

    def __init__(self, *reporters: Reporter | None):
        self.reporters = [r for r in reporters if r is not None]

    def start(self, header: dict) -> None:
        for r in self.reporters:
            r.start(header)

    def record(self, record: Record) -> None:
        for r in self.reporters:
            r.record(record)

    def finish(self, summary: Summary) -> None:
        for r in self.reporters:
            r.finish(summary)
