"""A digest that is lost (deleted, unreadable, invalid) takes its log files' proof with it, not their innocence.

Log keys have minute resolution, so a genuine log file in the first or last minute of a digest's span
also lies in the one-minute slack of its neighbour's span. When its own digest is lost, the neighbour
does not list it: that must read `not_covered`, never `unreferenced` (injected). And a backfill digest
that cannot be read may list any log file of its horizon: those are not injected either.
"""

from __future__ import annotations

import gzip
import hashlib
from datetime import timedelta

import pytest

from tests.helpers import Run
from validator.errors import TransportError
from validator.model import TrailArn, parse_time
from validator.pipeline import Validation
from validator.policy import RunConfig
from validator.synth import generate
from validator.synth import tamper as T
from validator.synth.memory import MemorySource

R1 = "us-east-1"


class _FlakySource(MemorySource):
    """Reads of `broken` always fail in transit."""

    def __init__(self, trail, broken):
        super().__init__(trail)
        self.broken = set(broken)

    def open(self, ref):
        if ref in self.broken:
            raise TransportError("connection reset by peer")
        return super().open(ref)


def _run(trail, broken=()) -> Run:
    v = Validation(_FlakySource(trail, broken), RunConfig(trail=TrailArn.parse(trail.arn), workers=2), None, None,
                   now=trail.acquired_at)
    return Run(list(v.records()), v.summary)


def _list_in(trail, digest_ref, log_ref) -> None:
    body = trail.objects[log_ref].body
    entry = {"s3Bucket": log_ref.bucket, "s3Object": log_ref.key, "hashAlgorithm": "SHA-256",
             "hashValue": hashlib.sha256(gzip.decompress(body)).hexdigest(),
             "oldestEventTime": None, "newestEventTime": None}
    T.resign(trail, digest_ref, lambda d: d["logFiles"].append(entry))


@pytest.fixture
def edges():
    """A trail whose second digest also lists a log of its first minute and one of its last minute."""
    trail = generate(regions=(R1,), hours=4, seed=5)
    d = T.digest_at(trail, R1, 1)
    doc = trail.digest_doc(d.ref)
    first = T.inject_log(trail, R1, parse_time(doc["digestStartTime"]) + timedelta(seconds=5))
    last = T.inject_log(trail, R1, parse_time(doc["digestEndTime"]) - timedelta(seconds=30))
    _list_in(trail, d.ref, first)
    _list_in(trail, d.ref, last)
    assert _run(trail).problems() == []
    return trail, d.ref, (first, last)


@pytest.mark.parametrize("fate", ["deleted", "unreadable", "invalid"])
def test_edge_logs_of_a_lost_digest_are_not_covered_not_unreferenced(edges, fate):
    trail, digest, logs = edges
    broken = ()
    if fate == "deleted":
        T.delete(trail, digest)
    elif fate == "unreadable":
        broken = (digest,)
    else:
        T.corrupt(trail, digest)
    run = _run(trail, broken)
    verdicts = {r.key: (r.verdict.status, r.verdict.reason) for r in run.logs}
    for ref in logs:
        assert verdicts[ref.key] == ("unverifiable", "not_covered"), (fate, ref.key, verdicts[ref.key])
    assert not [r for r in run.logs if r.verdict.reason == "unreferenced"]
    assert run.exit_code == (3 if fate == "unreadable" else 1)


def test_a_log_injected_deep_inside_a_valid_digest_stays_unreferenced_next_to_a_lost_one(edges):
    """The edge rule does not let a lost digest excuse injections well inside its neighbours' spans."""
    trail, digest, _ = edges
    nxt = T.digest_at(trail, R1, 2)
    start = parse_time(trail.digest_doc(nxt.ref)["digestStartTime"])
    injected = T.inject_log(trail, R1, start + timedelta(minutes=20))
    run = _run(trail, (digest,))
    rec = next(r for r in run.logs if r.key == injected.key)
    assert (rec.verdict.status, rec.verdict.reason) == ("invalid", "unreferenced")


def test_logs_of_an_unreadable_backfill_digest_are_not_covered():
    trail = generate(regions=(R1,), hours=4, backfill_hours=(1,), seed=5)
    backfill = trail.digests(region=R1, backfill=True)
    assert backfill
    late = [lf["s3Object"] for b in backfill for lf in trail.digest_doc(b.ref)["logFiles"]]
    assert late
    assert _run(trail).problems() == []
    run = _run(trail, [b.ref for b in backfill])
    verdicts = {r.key: (r.verdict.status, r.verdict.reason) for r in run.logs}
    for key in late:
        assert verdicts[key] == ("unverifiable", "not_covered"), verdicts[key]
    assert run.exit_code == 3
