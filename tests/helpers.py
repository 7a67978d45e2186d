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


#: Linux carries a process's peak RSS across fork and exec, so ru_maxrss of a child forked from pytest has
#: pytest's own size as a floor. The measured command is spawned from this small interpreter instead, which
#: writes the command's own peak RSS (KiB) and exit code to the file named first.
_RSS_LAUNCHER = """import os, sys
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
open(sys.argv[1], "w").write("%d %d" % (usage.ru_maxrss, os.waitstatus_to_exitcode(status)))
"""


def run_measuring_rss(cmd: list[str], report_file: str, **popen) -> tuple[bytes, bytes, int, float]:
    """Run `cmd` (absolute path first): its stdout, stderr, exit code and its own peak RSS in MiB."""
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-S", "-c", _RSS_LAUNCHER, report_file, *cmd],
                          capture_output=True, check=False, **popen)
    rss_kib, code = (int(x) for x in open(report_file).read().split())
    return proc.stdout, proc.stderr, code, rss_kib / 1024
