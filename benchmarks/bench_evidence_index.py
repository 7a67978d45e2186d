"""What an evidence directory's manifest index costs: opening it and listing everything, and a whole validation.

    PYTHONPATH=. .venv/bin/python -m benchmarks.bench_evidence_index [--quick] [--no-cli]

For each history workload (one region, an hour a log: a week, a month, a year; benchmarks.workloads), in a
fresh process each so that no peak carries over:
- `open+list`: seconds to build `EvidenceSource` and list every object of the bucket (best of 3), and the peak of
  Python's traced memory (tracemalloc) while doing it;
- `cli`: the maximum RSS (`/usr/bin/time -v`) and wall time of
  `python -m validator validate --source DIR ... --output json --no-progress`.

`--lines N` (repeatable) also writes a manifest of N synthetic object lines (no object files: an
organization's scale, for the index alone) and measures open+list and the probe's maximum RSS.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import orjson

from benchmarks.workloads import CACHE, ensure, history_workloads

_PROBE = r"""
import resource
import sys, time, tracemalloc
from validator.sources.evidence import EvidenceSource
path, bucket, traced = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
if traced:
    tracemalloc.start()
t0 = time.perf_counter()
src = EvidenceSource(path)
opened = time.perf_counter() - t0
n = sum(1 for _ in src.list(bucket, ""))
total = time.perf_counter() - t0
peak = tracemalloc.get_traced_memory()[1] if traced else 0
src.close()
print(opened, total, n, peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


REPEATS = 3


def open_and_list(path: str, bucket: str) -> dict[str, float]:
    """Timed without tracing (tracemalloc slows allocation down), best of REPEATS, then traced for the peak."""
    runs = [subprocess.run([sys.executable, "-c", _PROBE, path, bucket, "0"], check=True, capture_output=True,
                           text=True).stdout.split() for _ in range(REPEATS)]
    out = min(runs, key=lambda r: float(r[1]))  # the best of the repeats: load only ever slows it down
    traced = subprocess.run([sys.executable, "-c", _PROBE, path, bucket, "1"], check=True, capture_output=True,
                            text=True).stdout.split()
    return {"open_s": float(out[0]), "open_list_s": float(out[1]), "objects": int(out[2]),
            "max_rss_mib": int(out[4]) / 1024, "traced_peak_mib": int(traced[3]) / 2**20}


def synthetic_manifest(n: int) -> Path:
    """An evidence manifest of `n` object lines of the shape acquisition writes (about 600 bytes each)."""
    root = CACHE / f"manifest-{n}"
    if (root / "manifest.jsonl").exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    header = {"format": "ctvalidate-evidence", "version": 1, "acquired_at": "2026-01-02T00:00:00Z", "trail": None,
              "public_keys": {"file": "public-keys.json", "sha256": "0" * 64}, "objects": n}
    with open(root / "manifest.jsonl.part", "wb") as f:
        f.write(orjson.dumps(header) + b"\n")
        for i in range(n):
            account = 100000000000 + i // 100_000
            key = (f"AWSLogs/o-example/{account}/CloudTrail/us-east-1/2026/{i // 8640 % 12 + 1:02d}/"
                   f"{i // 288 % 28 + 1:02d}/{account}_CloudTrail_us-east-1_2026{i:08d}_{i:016x}.json.gz")
            f.write(orjson.dumps({"bucket": "org-trail", "key": key, "file": f"objects/org-trail/{key}",
                                  "sha256": f"{i:064x}", "size": 1000 + i % 5000, "etag": f"{i:032x}",
                                  "version_id": None, "last_modified": "2026-01-01T00:05:00Z",
                                  "storage_class": "STANDARD", "sse": "aws:kms", "kms_key_id": "arn:aws:kms:us-east-1:"
                                  "111122223333:key/0f0e0d0c-0b0a-0908-0706-050403020100", "metadata": {},
                                  "error": None}) + b"\n")
    os.replace(root / "manifest.jsonl.part", root / "manifest.jsonl")
    return root


def cli(path: str, info: dict) -> dict[str, float]:
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "validator", "validate", "--trail-arn", info["arn"],
           "--source", path, "--start-time", info["start"], "--end-time", info["end"], "--output", "json",
           "--no-progress"]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    summary = orjson.loads(p.stdout.strip().splitlines()[-1])
    return {"exit": p.returncode, "max_rss_mib": int(m.group(1)) / 1024 if m else -1.0, "seconds": seconds,
            "digests": sum(summary.get("digests", {}).values()), "logs": sum(summary.get("logs", {}).values())}


def main() -> None:
    quick = "--quick" in sys.argv
    for i, arg in enumerate(sys.argv):
        if arg == "--lines":
            n = int(sys.argv[i + 1])
            print(orjson.dumps({"workload": f"{n} lines", **open_and_list(str(synthetic_manifest(n)), "org-trail")})
                  .decode(), flush=True)
    if "--lines" in sys.argv and "--quick" not in sys.argv:
        return
    for w in history_workloads(quick):
        info = ensure(w)
        path = str(w.path)
        row: dict = {"workload": w.name, **open_and_list(path, info["bucket"])}
        if "--no-cli" not in sys.argv:
            row["cli"] = cli(path, info)
        print(orjson.dumps(row).decode(), flush=True)


if __name__ == "__main__":
    main()
