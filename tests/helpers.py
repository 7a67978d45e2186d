"""Shared test helpers: run the pipeline over a synthetic trail in memory and index the records."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from validator.model import TrailArn
from validator.pipeline import Validation
from validator.policy import RunConfig
from validator.results import DigestRecord, GapRecord, LogRecord, Summary
from validator.synth import SyntheticTrail
from validator.synth.memory import MemorySource


class Run:
    def __init__(self, records: list, summary: Summary):
        self.records = records
        self.summary = summary

    @property
    def digests(self) -> list[DigestRecord]:
        return [r for r in self.records if isinstance(r, DigestRecord)]

    @property
    def logs(self) -> list[LogRecord]:
        return [r for r in self.records if isinstance(r, LogRecord)]

    @property
    def gaps(self) -> list[GapRecord]:
        return [r for r in self.records if isinstance(r, GapRecord)]

    def problems(self) -> list[tuple[str, str, str | None, str | None]]:
        """(kind, status, reason, key) of every record that is not valid."""
        return sorted((r.kind, r.verdict.status, r.verdict.reason or "", r.key or "") for r in self.records
                      if not isinstance(r, GapRecord) and r.verdict.status != "valid")

    def statuses(self, kind: str) -> Counter:
        return Counter(r.verdict.status for r in self.records if r.kind == kind)

    @property
    def exit_code(self) -> int:
        return self.summary.exit_code


def run_memory(trail: SyntheticTrail, *, now: datetime | None = None, with_trail_info: bool = True,
               **config) -> Run:
    cfg = RunConfig(trail=TrailArn.parse(trail.arn), workers=config.pop("workers", 4), **config)
    v = Validation(MemorySource(trail, with_trail_info=with_trail_info), cfg, None, None,
                   now=now or trail.acquired_at)
    records = list(v.records())
    return Run(records, v.summary)
