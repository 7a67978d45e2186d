"""JSON Lines: one object per line on stdout, every record, the summary last."""

from __future__ import annotations

from typing import IO

import orjson

from ..results import Record, Summary


class JsonLinesReporter:
    def __init__(self, out: IO[str]):
        self.out = out

    def start(self, header: dict) -> None:
        pass

    def record(self, record: Record) -> None:
        self.out.write(orjson.dumps(record.to_json()).decode() + "\n")

    def finish(self, summary: Summary) -> None:
        self.out.write(orjson.dumps(summary.to_json()).decode() + "\n")
        self.out.flush()
