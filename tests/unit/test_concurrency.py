"""The concurrent pipeline gives exactly the records of a run with one worker, in the same order.

The source used here sleeps a random (seeded) few milliseconds on every read and listing page, so
that with many workers the reads complete in an order unlike the order they were asked in, and
groups (account, region) overlap: only the pipeline's own ordering keeps the output deterministic.
The records are compared as the JSON Lines reporter writes them, and the summary too.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta
from typing import Iterator

import orjson
import pytest
from click.testing import CliRunner

from validator.cli import main as cli_main
from validator.core import hashing
from validator.model import ObjectMeta, ObjectRef, TrailArn, format_time
from validator.pipeline import Validation
from validator.policy import RunConfig
from validator.sources.base import ListedObject, ObjectStream
from validator.synth import StoredObject, generate
from validator.synth.memory import MemorySource
from validator.synth.tamper import apply_named

# several attacks at once, in both regions, on logs, digests and the chain
TAMPERS = ("modify-log:us-east-1:2", "delete-log:eu-west-1:4", "truncate-log:us-east-1:7",
           "trailing-log:eu-west-1:1", "inject-log:us-east-1:5", "modify-digest:eu-west-1:3",
           "delete-digest:us-east-1:6", "chain-hash:eu-west-1:8", "strip-metadata:us-east-1:9",
           "reencrypt-log:eu-west-1:6")


class JitterSource(MemorySource):
    """A MemorySource whose reads and listings take a random few milliseconds (seeded per call order)."""

    def __init__(self, trail, seed: int, max_delay: float = 0.004):
        super().__init__(trail)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._max = max_delay

    def _pause(self) -> None:
        with self._lock:
            delay = self._rng.random() * self._max
        time.sleep(delay)

    def open(self, ref: ObjectRef) -> ObjectStream:
        self._pause()
        return super().open(ref)

    def list(self, bucket: str, prefix: str, start_after: str | None = None) -> Iterator[ListedObject]:
        for i, obj in enumerate(super().list(bucket, prefix, start_after)):
            if i % 7 == 0:
                self._pause()
            yield obj


def _trail(tampers: tuple[str, ...] = (), **spec):
    spec = {"hours": 12, "regions": ("us-east-1", "eu-west-1"), "accounts": ("111122223333", "444455556666"),
            "org_id": "o-abcdefghij", "logs_per_hour": (1, 4), "stops": ((5, 6),), "backfill_hours": (2,),
            "rotate_at_hour": 4, **spec}
    trail = generate(**spec)
    for t in tampers:
        apply_named(trail, t)
    day = trail.spec.start.strftime("%Y/%m/%d")
    for account in trail.spec.accounts:  # stray objects in every group's folders: reported after their group
        for region in trail.spec.regions:
            root = f"AWSLogs/{trail.spec.org_id}/{account}/"
            for key in (f"{root}CloudTrail/{region}/{day}/notes-{region}.txt",
                        f"{root}CloudTrail-Digest/{region}/{day}/backup.json.gz"):
                ref = ObjectRef(trail.spec.bucket, key)
                trail.objects[ref] = StoredObject(ObjectMeta(ref=ref, sse="AES256"), b"x")
    return trail


def _jsonl(trail, workers: int, seed: int = 0, **config) -> list[bytes]:
    cfg = RunConfig(trail=TrailArn.parse(trail.arn), workers=workers, **config)
    v = Validation(JitterSource(trail, seed), cfg, None, None, now=trail.acquired_at)
    lines = [orjson.dumps(r.to_json()) for r in v.records()]
    return lines + [orjson.dumps(v.summary.to_json())]


@pytest.mark.parametrize("tampers", [(), TAMPERS], ids=["clean", "tampered"])
def test_many_workers_give_the_records_of_one_worker_in_the_same_order(tampers):
    trail = _trail(tampers)
    one = _jsonl(trail, workers=1)
    kinds = [orjson.loads(x)["kind"] for x in one]
    assert {"digest", "log", "gap", "summary"} <= set(kinds)
    assert kinds.count("object") == 2 * 2 * 2  # the strays, each group's after that group's records
    if tampers:  # the attacks are seen, so the comparison covers failure records too
        assert any(orjson.loads(x).get("status") not in (None, "valid") for x in one)
    for workers, seed in ((2, 1), (8, 2), (32, 3)):
        assert _jsonl(trail, workers=workers, seed=seed) == one, f"--workers {workers} differs from --workers 1"


def test_same_records_with_a_window_and_expectations():
    trail = _trail(TAMPERS)
    start = trail.spec.start + timedelta(hours=3)
    end = trail.spec.start + timedelta(hours=9)
    kw = dict(start=start, end=end, expect_regions=frozenset({"us-east-1", "ap-south-1"}),
              check_write_times=True)
    one = _jsonl(trail, workers=1, **kw)
    assert _jsonl(trail, workers=16, seed=5, **kw) == one


def test_cli_json_lines_are_identical_with_one_and_many_workers(tmp_path):
    trail = _trail(TAMPERS)
    path = tmp_path / "evidence"
    trail.write_evidence(str(path))
    outs = []
    for workers in ("1", "12"):
        # an explicit end: the default (now) would differ between two runs that straddle a second
        result = CliRunner().invoke(cli_main, ["validate", "--trail-arn", trail.arn, "--source", str(path),
                                               "--end-time", format_time(trail.acquired_at),
                                               "--output", "json", "--workers", workers])
        assert result.exit_code == 1, result.output
        outs.append(result.stdout)
    assert outs[0] == outs[1]
    assert len(outs[0].splitlines()) > 50


def test_hashing_is_the_same_with_isal_and_with_the_stdlib_fallback():
    """The fast inflater, when installed, and stdlib zlib agree on every outcome: hash, size and refusal."""
    if hashing._fast_zlib is None:
        pytest.skip("isal is not installed: only the stdlib inflater is there to test")
    trail = generate(hours=2, regions=("us-east-1",), events_per_log=(50, 400))
    bodies = [o.body for o in trail.logs()]
    good = bodies[0]
    cases = bodies + [good[: len(good) // 2], good + b"\x00" * 9, good + good, b"", b"not gzip at all",
                      good[:10] + bytes([good[10] ^ 0xFF]) + good[11:]]
    # reserved FLG bits: zlib refuses them, isal does not (so the header is checked before either inflates)
    cases += [good[:3] + bytes([good[3] ^ bit]) + good[4:] for bit in (0x20, 0x40, 0x80)]

    def outcome(body: bytes, fast: bool, step: int):
        h = hashing.GunzipSha256(prefer_fast=fast)
        try:
            for i in range(0, len(body), step):
                h.update(body[i:i + step])
            return ("ok", h.finish(), h.output_size)
        except Exception as exc:  # the type is the verdict (FormatError, TrailingDataError)
            return ("error", type(exc).__name__)

    for body in cases:
        for step in (1 << 20, 777):
            assert outcome(body, True, step) == outcome(body, False, step)
    for body in cases[-3:]:  # the header split over chunks of one and two bytes too
        assert outcome(body, True, 1) == outcome(body, False, 2) == ("error", "FormatError")
    assert outcome(good, False, 1 << 20)[0] == "ok"
