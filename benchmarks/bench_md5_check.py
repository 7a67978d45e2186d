"""What the ETag (MD5) check on S3 bodies costs next to the work every log read does anyway.

    .venv/bin/python -m benchmarks.bench_md5_check

Every SSE-S3/unencrypted single-part body is MD5-hashed while it streams (validator.sources.s3.S3Stream);
a log is also inflated and SHA-256-hashed (validator.core.hashing.GunzipSha256). This prints both times
over the same compressed bytes, in memory (no network), and the ratio.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import time

from validator.core.hashing import INFLATER, GunzipSha256

CHUNK = 1 << 20


def _log_bytes(records: int) -> bytes:
    rng = random.Random(1)
    doc = {"Records": [{"eventName": f"Get{rng.randrange(50)}", "eventID": f"{rng.getrandbits(128):032x}",
                        "sourceIPAddress": f"10.0.{rng.randrange(255)}.{rng.randrange(255)}"}
                       for _ in range(records)]}
    return gzip.compress(json.dumps(doc).encode(), 6)


def _best(fn, n: int = 5) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    gz = _log_bytes(300_000)
    chunks = [gz[i:i + CHUNK] for i in range(0, len(gz), CHUNK)]

    def md5() -> None:
        h = hashlib.md5(usedforsecurity=False)
        for c in chunks:
            h.update(c)

    def gunzip_sha256() -> None:
        g = GunzipSha256()
        for c in chunks:
            g.update(c)
        g.finish()

    a, b = _best(md5), _best(gunzip_sha256)
    print(f"{len(gz) / 2**20:.1f} MiB compressed: md5 {a * 1000:.1f} ms, gunzip ({INFLATER}) + sha256 "
          f"{b * 1000:.1f} ms; the ETag check adds {100 * a / b:.1f}% to a log's hashing")


if __name__ == "__main__":
    main()
