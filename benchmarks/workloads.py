"""The synthetic trails the benchmarks run on, made by the project's generator and cached as evidence directories.

Each trail is written once to `benchmarks/.cache/NAME-HASH/` (an evidence directory, plus
`bench-info.json`: its ARN, window, object keys and sizes); the hash covers the spec, so a changed
spec makes a new trail. Every run of a size (evidence, the hooked S3, moto, the AWS CLI) reads the
same trail.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import zlib
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

from validator.model import format_time
from validator.synth import TrailSpec, generate

UTC = timezone.utc
CACHE = Path(__file__).resolve().parent / ".cache"

#: events per log file, for about 2 KB, 200 KB and 2 MB compressed (the generator's events gzip ~7:1)
EVENTS = {"small": 10, "typical": 2000, "large": 20000}


@dataclass(frozen=True)
class Workload:
    name: str
    spec: TrailSpec

    @property
    def path(self) -> Path:
        digest = hashlib.sha256(repr(asdict(self.spec)).encode()).hexdigest()[:12]
        return CACHE / f"{self.name}-{digest}"


def _spec(name: str, hours: int, logs_per_hour: int, events: int, regions: tuple[str, ...],
          start: datetime) -> TrailSpec:
    return TrailSpec(trail_name=f"bench-{name}", bucket=f"ct-bench-{name}", regions=regions, hours=hours,
                     logs_per_hour=(logs_per_hour, logs_per_hour), events_per_log=(events, events),
                     rotate_at_hour=hours // 2, start=start, seed=7)


def throughput_workloads(quick: bool) -> list[Workload]:
    """Small, typical and large log files; two regions (two chains, as a multi-region trail has)."""
    regions = ("us-east-1", "eu-west-1")
    start = datetime(2026, 10, 1, tzinfo=UTC)
    shape = {  # hours, logs per hour per region
        "small": (6, 8) if quick else (24, 8),
        "typical": (3, 2) if quick else (24, 4),
        "large": (1, 2) if quick else (6, 2),
    }
    return [Workload(n, _spec(n, h, lph, EVENTS[n], regions, start)) for n, (h, lph) in shape.items()]


def history_workloads(quick: bool) -> list[Workload]:
    """One region, one small log file an hour, for a week, a month and a year; and a month with 24 log files
    an hour (more log files than the year, a twelfth of its digests: what memory grows with)."""
    lengths = {"1 week": (24 * 7, 1), "1 month": (24 * 30, 1), "1 year": (24 * 365, 1),
               "1 month, 24 log files an hour": (24 * 30, 24)}
    if quick:
        lengths = {"1 day": (24, 1), "1 week": (24 * 7, 1), "1 day, 24 log files an hour": (24, 24)}
    start = datetime(2025, 6, 1, tzinfo=UTC)
    out = []
    for label, (hours, lph) in lengths.items():
        name = f"history-{hours}h" + (f"-{lph}lph" if lph > 1 else "")
        spec = replace(_spec(name, hours, lph, 4, ("us-east-1",), start), events_per_log=(2, 6))
        out.append(Workload(label, spec))
    return out


def ensure(w: Workload, log: Any = print) -> dict[str, Any]:
    """The workload's evidence directory (generated now unless cached) and its bench-info."""
    info_file = w.path / "bench-info.json"
    if info_file.exists():
        return orjson.loads(info_file.read_bytes())
    log(f"generating the {w.name} trail ({w.spec.hours} h, {len(w.spec.regions)} region(s)) in {w.path}")
    if w.path.exists():
        shutil.rmtree(w.path)
    tmp = w.path.with_name(w.path.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    trail = generate(w.spec)
    trail.write_evidence(str(tmp))
    logs = trail.logs()
    digests = trail.digests(backfill=None)
    raw = sum(len(zlib.decompress(o.body, 31)) for o in logs)
    end = w.spec.start + timedelta(hours=w.spec.hours + 1)
    info = {"name": w.name, "arn": trail.arn, "bucket": w.spec.bucket, "start": format_time(w.spec.start),
            "end": format_time(end), "logs": len(logs), "digests": len(digests),
            "log_bytes": sum(len(o.body) for o in logs), "log_uncompressed": raw,
            "digest_bytes": sum(len(o.body) for o in digests), "regions": list(w.spec.regions),
            "hours": w.spec.hours, "keys": sorted(o.ref.key for o in digests + logs)}
    (tmp / "bench-info.json").write_bytes(orjson.dumps(info))
    os.replace(tmp, w.path)
    return info
