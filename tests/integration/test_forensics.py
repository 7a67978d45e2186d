"""Forensic depth over S3: who stopped logging, rewrites told by write times, versions and delete markers,
Object Lock. The endpoint is moto behind the test proxy; the proxy serves CloudTrail's write times as
LastModified for what the trail writer put (moto's own is the upload time), so only what a test
re-uploads afterwards carries today's time."""

from __future__ import annotations

import gzip
from datetime import timedelta

import orjson
import pytest

from validator.model import format_time
from validator.synth.s3writer import write_trail

from .conftest import ACCOUNT, run_cli

pytestmark = pytest.mark.integration
R1 = "us-east-1"


def _events(trail, name: str) -> list[dict]:
    out = []
    for log in trail.logs():
        for e in orjson.loads(gzip.decompress(log.body))["Records"]:
            if e["eventName"] == name:
                out.append(e)
    return out


# --- explained gaps ----------------------------------------------------------------------------


def test_gap_is_explained_by_the_principal_who_stopped_and_restarted_logging(world):
    trail = world.deploy(stops=((1, 3),), hours=5, operator="mallory", operator_ip="203.0.113.9")
    stop, = _events(trail, "StopLogging")
    start, = _events(trail, "StartLogging")
    run = world.validate(trail, "--require-explained-gaps")
    assert run.exit_code == 0, run.stdout + run.stderr
    gaps = run.of("gap")
    assert len(gaps) == 2  # one per region; the eu-west-1 gap is explained by the home region's events
    for gap in gaps:
        e = gap["explained_by"]
        assert e is not None, gap
        assert (e["event_name"], e["event_time"], e["event_id"]) == ("StopLogging", stop["eventTime"], stop["eventID"])
        assert e["principal_arn"] == f"arn:aws:iam::{ACCOUNT}:user/mallory" and e["source_ip"] == "203.0.113.9"
        assert e["event_time"] <= gap["start_time"]
        r = e["restarted_by"]
        assert (r["event_name"], r["event_id"], r["principal_arn"]) == ("StartLogging", start["eventID"],
                                                                        e["principal_arn"])
        assert (r["event_time"], r["event_time"]) == (start["eventTime"], max(r["event_time"], gap["start_time"]))
        assert "mallory" in gap["message"] and "203.0.113.9" in gap["message"]
    text = run_cli(["validate", "--trail-arn", trail.arn, "--endpoint-url", world.endpoint])
    assert "explained by StopLogging" in text.stderr and "user/mallory" in text.stderr


def test_unexplained_gap_fails_only_with_require_explained_gaps(world):
    trail = world.deploy(stops=((1, 3),), hours=5, explain_stops=False)
    run = world.validate(trail)
    assert run.exit_code == 0
    assert [g["explained_by"] for g in run.of("gap")] == [None, None]
    strict = world.validate(trail, "--require-explained-gaps")
    assert strict.exit_code == 1 and strict.problems() == {}  # only the gaps fail the run


# --- write times ---------------------------------------------------------------------------------


def _reupload_sse_s3(world, ref) -> None:
    """The attacker's rewrite: same key, SSE-S3 like CloudTrail's own logs (here: the same bytes, modified
    content would be caught by its hash anyway)."""
    s3 = world.client("s3")
    body = s3.get_object(Bucket=ref.bucket, Key=ref.key)["Body"].read()
    s3.put_object(Bucket=ref.bucket, Key=ref.key, Body=body, ServerSideEncryption="AES256")


def test_log_reuploaded_with_aes256_is_a_late_write(world):
    trail = world.deploy(write_times=True)
    ref = trail.logs(region=R1)[1].ref
    _reupload_sse_s3(world, ref)
    assert world.client("s3").head_object(Bucket=ref.bucket, Key=ref.key)["ServerSideEncryption"] == "AES256"

    plain = world.validate(trail)
    assert plain.exit_code == 0, plain.stdout  # bytes and encryption look like CloudTrail's
    run = world.validate(trail, "--check-write-times")
    assert run.exit_code == 3, run.stdout
    assert run.problems() == {("log", "warning", "late_write"): 1}
    rec = run.by_key(ref.key)
    assert (rec["status"], rec["reason"]) == ("warning", "late_write") and "after CloudTrail wrote it" in rec["message"]
    # everything the writer put still carries CloudTrail's own write time: no other object is late
    assert run.summary["digests"] == {"valid": len(trail.digests())}
    # a tolerance longer than the rewrite's delay lets it pass
    assert world.validate(trail, "--check-write-times", "--write-time-tolerance", "400d").exit_code == 0


def test_late_write_is_not_applied_to_a_copy_but_survives_acquisition(world, tmp_path):
    trail = world.deploy(write_times=True)
    ref = trail.logs(region=R1)[2].ref
    _reupload_sse_s3(world, ref)
    # a forensic copy in another bucket: every object has the copy's time, none is judged on it
    copy_bucket = trail.spec.bucket + "-copy"
    write_trail(trail, world.target, bucket=copy_bucket)
    copy = world.validate(trail, "--s3-bucket", copy_bucket, "--copy-of", f"s3://{trail.spec.bucket}",
                          "--check-write-times")
    assert copy.exit_code == 0, copy.stdout
    # evidence acquired from the original bucket records the original times: the late write is still told
    dest = tmp_path / "evidence"
    assert world.acquire(trail, dest).exit_code == 0
    manifest = [orjson.loads(line) for line in (dest / "manifest.jsonl").read_bytes().splitlines()[1:]]
    times = {m["key"]: m["last_modified"] for m in manifest}
    original = trail.objects[trail.logs(region=R1)[0].ref].meta.last_modified
    assert times[trail.logs(region=R1)[0].ref.key] == format_time(original)
    assert times[ref.key] > format_time(trail.acquired_at)
    offline = world.validate_evidence(trail, "--check-write-times", path=dest)
    assert offline.problems() == {("log", "warning", "late_write"): 1}
    assert offline.by_key(ref.key)["reason"] == "late_write"
