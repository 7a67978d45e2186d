"""Hostile content over live S3: what a bucket can hold that the caller cannot read, or should not trust."""

from __future__ import annotations

import gzip
import json

import pytest

from validator.model import ObjectRef
from validator.synth import tamper as T
from validator.synth.s3writer import create_bucket, write_trail

pytestmark = pytest.mark.integration


def test_a_previous_digest_in_a_bucket_the_caller_cannot_read(world):
    """The chain's first digest lies in another bucket (the trail's bucket changed) that denies the caller:
    that digest is unverifiable/access_denied, by name; everything else is verified and the run ends 3."""
    other = f"ct-old-{world.suffix}"
    moved = {}

    def move_first(trail):
        d0, d1 = trail.digests(region="us-east-1")[:2]
        T.resign(trail, d0.ref, lambda doc: doc.update(digestS3Bucket=other))
        T.resign(trail, d1.ref, lambda doc: doc.update(previousDigestS3Bucket=other))
        obj = trail.objects.pop(d0.ref)
        new = ObjectRef(other, d0.ref.key)
        trail.objects[new] = T.StoredObject(T.replace(obj.meta, ref=new), obj.body)
        moved["ref"] = new

    trail = world.build(mutate=move_first)
    create_bucket(world.target, other, trail.spec.home_region)
    write_trail(trail, world.target)
    world.register(trail)
    ref = moved["ref"]
    world.state.denied_objects.add((ref.bucket, ref.key))
    world.state.denied_list_buckets.add(other)
    run = world.validate(trail)
    assert run.exit_code == 3, run.stdout + run.stderr
    rec = run.by_key(ref.key)
    assert (rec["bucket"], rec["status"], rec["reason"]) == (other, "unverifiable", "access_denied")
    assert {k: v for k, v in run.problems().items() if k[0] == "digest"} == {
        ("digest", "unverifiable", "access_denied"): 1}
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("body", [
    gzip.compress(b"[" * 200_000 + b"]" * 200_000),  # deeply nested
    gzip.compress(b'{"awsAccountId": "\xff\xfe"}'),  # not UTF-8
    gzip.compress(json.dumps({"digestEndTime": -1, "logFiles": {"a": 1}}).encode()),  # wrong types
    b"\x1f\x8b\x08\x00" + b"\x00" * 64,  # a gzip header, then nothing sensible
])
def test_hostile_digest_bodies_in_the_bucket(world, body):
    """The bytes S3 serves are the attacker's: each hostile digest is invalid_format, the run goes on."""
    victim = {}

    def replace_body(trail):
        d = trail.digests(region="eu-west-1")[2]
        T._rewrite(trail.objects[d.ref], body)
        victim["ref"] = d.ref

    trail = world.deploy(mutate=replace_body)
    run = world.validate(trail)
    rec = run.by_key(victim["ref"].key)
    assert (rec["status"], rec["reason"]) == ("invalid", "invalid_format")
    assert run.exit_code == 1 and "Traceback" not in run.stderr
    assert len(run.of("digest")) == len(trail.digests())


@pytest.mark.timeout(300)
def test_a_two_gigabyte_gzip_bomb_served_by_s3(world, ctvalidate_bin, tmp_path):
    """The bomb over live S3, in the real process: hashed in bounded memory, and its hash fails."""
    from tests.helpers import run_measuring_rss
    from validator.synth.hostile import gzip_bomb

    from .conftest import _clean_env

    victim = {}

    def plant(trail):
        log = trail.logs(region="us-east-1")[0]
        T._rewrite(trail.objects[log.ref], gzip_bomb(2 << 30))
        victim["ref"] = log.ref

    trail = world.deploy(mutate=plant)
    out, err, code, peak_mib = run_measuring_rss(
        [ctvalidate_bin, "validate", "--trail-arn", trail.arn, "--endpoint-url", world.endpoint, "--output", "json",
         "--workers", "4"], str(tmp_path / "rss"), env=_clean_env())
    records = [json.loads(x) for x in out.splitlines()]
    rec = next(r for r in records if r.get("key") == victim["ref"].key)
    assert (rec["status"], rec["reason"]) == ("invalid", "hash_mismatch")
    assert code == 1 and b"Traceback" not in err
    assert [r["key"] for r in records if r.get("status") not in ("valid", None)] == [victim["ref"].key]
    assert peak_mib < 200, f"peak RSS {peak_mib:.0f} MiB"
