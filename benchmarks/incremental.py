"""What --state saves: a daily job over a long history, measured in GETs, bytes read and wall time.

    .venv/bin/python benchmarks/incremental.py [--days 30] [--regions us-east-1,eu-west-1]

Generates a synthetic trail of DAYS days plus one, validates the first DAYS days with a new state (the
first run), then the whole trail with that state (the next day's run), and once more without a state
for comparison. The source is in memory, so times are the pipeline's own (verification, state I/O);
the GET counts and bytes are what a live run would ask of S3; --latency-ms adds a sleep to each GET.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import threading
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from validator.model import ObjectRef, TrailArn, parse_key
from validator.pipeline import Validation
from validator.policy import RunConfig
from validator.state import StateStore
from validator.synth import generate
from validator.synth.memory import MemorySource


class Counting(MemorySource):
    latency = 0.0  # seconds per GET, as S3 would take

    def __init__(self, trail):
        super().__init__(trail)
        self.gets = 0
        self.bytes = 0
        self._lock = threading.Lock()

    def open(self, ref: ObjectRef):
        if self.latency:
            time.sleep(self.latency)
        stream = super().open(ref)
        with self._lock:
            self.gets += 1
            self.bytes += len(self.trail.objects[ref].body)
        return stream


def run(trail, state: Path | None) -> tuple[int, int, float, int]:
    source = Counting(trail)
    store = StateStore.open(state) if state else None
    t0 = time.perf_counter()
    v = Validation(source, RunConfig(trail=TrailArn.parse(trail.arn), workers=8), None, None,
                   now=trail.acquired_at, state=store)
    for _ in v.records():
        pass
    if store:
        store.commit()
    return source.gets, source.bytes, time.perf_counter() - t0, v.summary.exit_code


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--regions", default="us-east-1,eu-west-1")
    ap.add_argument("--latency-ms", type=float, default=20.0, help="time per GET, as S3 would take (0: none)")
    args = ap.parse_args()
    Counting.latency = args.latency_ms / 1000
    regions = tuple(args.regions.split(","))
    trail = generate(hours=24 * (args.days + 1), regions=regions, rotate_at_hour=None, logs_per_hour=(2, 4),
                     events_per_log=(5, 20), seed=11)
    cut = trail.spec.start + timedelta(days=args.days)
    early = copy.copy(trail)
    early.objects = {r: o for r, o in trail.objects.items() if parse_key(r.key).time <= cut}
    delivered = max(parse_key(r.key).time for r in early.objects if parse_key(r.key).is_digest)
    early.trail = replace(trail.trail, latest_digest_delivery=delivered, latest_delivery=delivered)
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "trail.state"
        first = run(early, state)
        size = state.stat().st_size
        nxt = run(trail, state)
        full = run(trail, None)
    print(f"trail: {len(trail.objects)} objects, {args.days + 1} days, {len(regions)} regions, "
          f"{args.latency_ms:g} ms per GET, 8 workers")
    for name, (gets, nbytes, secs, code) in (("first run, with a new state", first),
                                              ("next day, with the state", nxt), ("next day, no state", full)):
        print(f"{name:30s} {gets:7d} GETs {nbytes / 1e6:9.2f} MB read {secs:7.2f} s  exit {code}")
    print(f"state file: {size / 1e6:.2f} MB after the first run")


if __name__ == "__main__":
    main()
