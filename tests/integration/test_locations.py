"""Where things lie: copies of a bucket, buckets in other regions, public keys per region."""

from __future__ import annotations

import pytest

from validator.synth.s3writer import write_trail

pytestmark = pytest.mark.integration


def test_copied_bucket_validates_with_copy_of(world):
    trail = world.deploy(prefix="org-logs", kms_key_arn="create")
    copy_bucket = f"forensic-copy-{world.suffix}"
    write_trail(trail, world.target, bucket=copy_bucket, prefix="case-7/ct")

    run = world.validate(trail, "--s3-bucket", copy_bucket, "--s3-prefix", "case-7/ct",
                         "--copy-of", f"s3://{trail.spec.bucket}/org-logs")
    assert run.exit_code == 0, run.stdout
    assert run.summary["digests"] == {"valid": len(trail.digests())}
    assert run.summary["logs"] == {"valid": len(trail.logs())}
    for r in run.records:
        assert r["bucket"] == copy_bucket and r["key"].startswith("case-7/ct/AWSLogs/")
    # nothing was read from the original bucket
    reads = world.state.calls_of("GetObject")
    assert reads and all(c[3].startswith(copy_bucket + "/") for c in reads)


def test_copied_bucket_without_copy_of_is_moved(world):
    trail = world.deploy(prefix="org-logs")
    copy_bucket = f"forensic-copy-{world.suffix}"
    write_trail(trail, world.target, bucket=copy_bucket, prefix="case-7/ct")

    run = world.validate(trail, "--s3-bucket", copy_bucket, "--s3-prefix", "case-7/ct")
    assert run.exit_code == 1
    digests = run.of("digest")
    assert len(digests) == len(trail.digests())
    assert all((r["status"], r["reason"]) == ("invalid", "moved") for r in digests)
    assert set(run.problems()) == {("digest", "invalid", "moved"), ("log", "unverifiable", "not_covered")}


def test_copy_in_the_same_bucket_under_another_prefix(world):
    trail = world.deploy()
    write_trail(trail, world.target, bucket=trail.spec.bucket, prefix="restored", create=False)
    run = world.validate(trail, "--s3-prefix", "restored", "--copy-of", f"s3://{trail.spec.bucket}")
    assert run.exit_code == 0, run.stdout
    assert all(r["key"].startswith("restored/AWSLogs/") for r in run.records)


def test_public_keys_differ_per_region_and_are_fetched_in_each(world):
    trail = world.deploy(regions=("us-east-1", "eu-west-1", "ap-southeast-2"))
    run = world.validate(trail)
    assert run.exit_code == 0, run.stdout
    assert run.summary["trust"]["public_keys"] == "aws"
    asked = {c[2] for c in world.state.calls_of("ListPublicKeys")}
    assert asked == {"us-east-1", "eu-west-1", "ap-southeast-2"}
    by_region: dict[str, set[str]] = {}
    for r in run.of("digest"):
        by_region.setdefault(r["region"], set()).add(r["fingerprint"])
    assert all(len(fps) == 2 for fps in by_region.values())  # a rotation in every region
    regions = sorted(by_region)
    for i, a in enumerate(regions):
        for b in regions[i + 1:]:
            assert not by_region[a] & by_region[b], "keys are per region"


def test_a_regions_keys_come_only_from_that_region(world):
    """When eu-west-1's ListPublicKeys has nothing, its digests have no key, although us-east-1 answers."""
    trail = world.deploy()
    world.state.public_keys["eu-west-1"] = []
    run = world.validate(trail)
    assert run.exit_code == 1
    eu = [r for r in run.of("digest") if r["region"] == "eu-west-1"]
    assert eu and all(r["reason"] == "unknown_public_key" for r in eu)
    assert all(r["status"] == "valid" for r in run.of("digest") if r["region"] == "us-east-1")


def test_bucket_in_another_region(world):
    """The trail's home and bucket are in eu-west-1; the client region is us-east-1."""
    trail = world.deploy(home_region="eu-west-1", regions=("eu-west-1", "us-east-1"))
    run = world.validate(trail, "--region", "us-east-1")
    assert run.exit_code == 0, run.stdout
    reads = world.state.calls_of("GetObject")
    assert reads and {c[2] for c in reads} == {"eu-west-1"}  # signed for the bucket's region
    assert {c[2] for c in world.state.calls_of("DescribeTrails")} == {"eu-west-1"}  # the trail's home


def test_a_key_whose_fingerprint_lies_is_refused(world):
    """ListPublicKeys in eu-west-1 returns another key under the fingerprint its digests name: not used."""
    trail = world.deploy(rotate_at_hour=None)
    (real,) = world.state.public_keys["eu-west-1"]
    (other,) = world.state.public_keys["us-east-1"]
    world.state.public_keys["eu-west-1"] = [{**real, "Value": other["Value"]}]
    run = world.validate(trail)
    assert run.exit_code == 1
    eu = [r for r in run.of("digest") if r["region"] == "eu-west-1"]
    assert eu and all((r["status"], r["reason"]) == ("invalid", "unknown_public_key") for r in eu)
    assert all(r["status"] == "valid" for r in run.of("digest") if r["region"] == "us-east-1")
