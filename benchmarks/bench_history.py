"""What the version history costs: the in-memory pipeline over a synthetic trail, with no versions, with a
versioned bucket where nothing was altered, and with a share of the log files rewritten (every older
version is hashed again) and of the digests deleted (recovered from their surviving versions).

    .venv/bin/python benchmarks/bench_history.py [--hours 72] [--altered 0.1]

Prints the best of three wall times and peak traced memory per case. No assertions: a measurement, not a test.
"""

from __future__ import annotations

import argparse
import random
import time
import tracemalloc
from dataclasses import replace
from datetime import timedelta

from validator.model import TrailArn
from validator.pipeline import Validation
from validator.policy import RunConfig
from validator.sources.base import BucketProtection
from validator.synth import generate
from validator.synth.memory import MemorySource, VersionedMemorySource
from validator.synth.trail import StoredObject


def run(source, trail) -> tuple[float, int, int]:
    cfg = RunConfig(trail=TrailArn.parse(trail.arn), workers=8)
    tracemalloc.start()
    t0 = time.perf_counter()
    v = Validation(source, cfg, None, None, now=trail.acquired_at)
    n = sum(1 for _ in v.records())
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return elapsed, peak, n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=int, default=72)
    ap.add_argument("--altered", type=float, default=0.1)
    a = ap.parse_args()
    rng = random.Random(7)
    trail = generate(hours=a.hours, rotate_at_hour=None)
    cases = [("no versions", MemorySource(trail)),
             ("versioned, unaltered", VersionedMemorySource(trail, protection=BucketProtection("Enabled")))]
    altered = generate(hours=a.hours, rotate_at_hour=None)
    older: dict = {}
    deleted: dict = {}
    logs = altered.logs()
    for obj in rng.sample(logs, int(len(logs) * a.altered)):
        older[obj.ref] = [StoredObject(obj.meta, obj.body)]
        obj.meta = replace(obj.meta, last_modified=altered.acquired_at)
    digests = altered.digests()
    for obj in rng.sample(digests[1:-1], int(len(digests) * a.altered)):
        older[obj.ref] = [altered.objects.pop(obj.ref)]
        deleted[obj.ref] = altered.acquired_at - timedelta(hours=1)
    cases.append((f"versioned, {a.altered:.0%} rewritten/deleted",
                  VersionedMemorySource(altered, older=older, deleted=deleted)))
    print(f"{len(trail.logs())} log files, {len(trail.digests())} digests, {a.hours} hours")
    run(cases[0][1], trail)  # warm up (imports, key parsing)
    for name, source in cases:
        t, peak, n = min(run(source, altered if "rewritten" in name else trail) for _ in range(3))
        print(f"{name:<36} {t:6.2f} s  peak {peak / 2**20:6.1f} MiB  {n} records")


if __name__ == "__main__":
    main()
