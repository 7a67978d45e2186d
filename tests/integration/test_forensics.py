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


# --- versions and delete markers --------------------------------------------------------------------


def _tampered_body(body: bytes) -> bytes:
    doc = orjson.loads(gzip.decompress(body))
    doc["Records"][0]["sourceIPAddress"] = "203.0.113.66"
    return gzip.compress(orjson.dumps(doc), mtime=0)


def test_versioned_bucket_a_deleted_digest_and_an_overwritten_log_are_told_with_their_history(world):
    trail = world.deploy(versioning=True)
    s3 = world.client("s3")
    digest = trail.digests(region="eu-west-1")[1]
    listed = [e["s3Object"] for e in trail.digest_doc(digest.ref)["logFiles"]]
    log = trail.logs(region=R1)[2]
    s3.delete_object(Bucket=digest.ref.bucket, Key=digest.ref.key)
    s3.put_object(Bucket=log.ref.bucket, Key=log.ref.key, Body=_tampered_body(log.body), ServerSideEncryption="AES256")

    run = world.validate(trail)
    assert run.exit_code == 1, run.stdout
    assert run.summary["versioning"] == "Enabled" and run.summary["object_lock"]["enabled"] is False

    d = run.by_key(digest.ref.key)
    assert (d["status"], d["reason"]) == ("missing", "not_found")  # the history as it stands was altered
    marker, survivor = d["versions"]
    assert marker["delete_marker"] and marker["is_latest"] and marker["status"] is None
    assert d["deleted"] == {"at": marker["last_modified"], "version_id": marker["version_id"]}
    assert not survivor["delete_marker"] and (survivor["status"], survivor["reason"]) == ("valid", None)
    assert "deleted at" in d["message"] and survivor["version_id"] in d["message"] and "is valid" in d["message"]
    assert "rewritten" not in d
    # the surviving version stands in the chain: no hole, no unknown key, and its log files are checked against it
    assert [r for r in run.of("digest") if r["key"] is None] == [] and run.of("gap") == []
    for key in listed:
        rec = run.by_key(key)
        assert (rec["status"], rec["digest_key"]) == ("valid", digest.ref.key)

    lg = run.by_key(log.ref.key)
    assert (lg["status"], lg["reason"], lg["rewritten"]) == ("invalid", "hash_mismatch", True)
    current, older = lg["versions"]
    assert current["is_latest"] and (current["status"], current["reason"]) == ("invalid", "hash_mismatch")
    assert not older["is_latest"] and (older["status"], older["reason"]) == ("valid", None)
    assert "deleted" not in lg and "rewritten: 2 versions" in lg["message"]
    assert run.problems() == {("digest", "missing", "not_found"): 1, ("log", "invalid", "hash_mismatch"): 1}
    # an unversioned run of the same trail gives no history fields at all
    assert all("versions" not in r for r in run.records if r.get("key") not in (digest.ref.key, log.ref.key))


def test_a_deleted_log_keeps_its_status_and_its_surviving_version_is_checked(world):
    trail = world.deploy(versioning=True)
    s3 = world.client("s3")
    log = trail.logs(region="eu-west-1")[1]
    s3.delete_object(Bucket=log.ref.bucket, Key=log.ref.key)
    run = world.validate(trail)
    rec = run.by_key(log.ref.key)
    assert (rec["status"], rec["reason"]) == ("missing", "not_found") and run.exit_code == 1
    assert rec["deleted"]["version_id"] == rec["versions"][0]["version_id"]
    assert rec["versions"][1]["status"] == "valid" and "is valid" in rec["message"]


def test_a_deleted_digest_is_recovered_from_its_newest_version_that_verifies(world):
    """Under the delete marker of one digest, the attacker's forged upload lies on CloudTrail's version: the
    original still verifies and stands in the chain. Of another digest, the attacker destroyed CloudTrail's
    version (DeleteObject with its VersionId) before the delete: only the forgery survives, and it is not
    trusted."""
    trail = world.deploy(versioning=True, regions=("us-east-1",))
    s3 = world.client("s3")
    forged = _tampered_body(trail.logs(region=R1)[0].body)  # not a digest at all
    a, b = trail.digests(region=R1)[1], trail.digests(region=R1)[3]
    for d in (a, b):
        original = s3.head_object(Bucket=d.ref.bucket, Key=d.ref.key)["VersionId"]
        s3.put_object(Bucket=d.ref.bucket, Key=d.ref.key, Body=forged, ServerSideEncryption="AES256",
                      Metadata=dict(d.meta.metadata))
        if d is b:
            s3.delete_object(Bucket=d.ref.bucket, Key=d.ref.key, VersionId=original)
        s3.delete_object(Bucket=d.ref.bucket, Key=d.ref.key)
    run = world.validate(trail)
    ra = run.by_key(a.ref.key)
    assert (ra["status"], ra["reason"], ra["rewritten"]) == ("missing", "not_found", True)
    marker, newest, original = ra["versions"]
    assert marker["delete_marker"] and (newest["status"], newest["reason"]) == ("invalid", "invalid_format")
    assert original["status"] == "valid" and original["version_id"] in ra["message"]
    for e in trail.digest_doc(a.ref)["logFiles"]:  # covered by the recovered original
        assert run.by_key(e["s3Object"])["status"] == "valid"
    rb = run.by_key(b.ref.key)
    assert [v["status"] for v in rb["versions"]] == [None, "invalid"] and "rewritten" not in rb
    assert "is invalid (invalid_format)" in rb["message"]
    for e in trail.digest_doc(b.ref)["logFiles"]:  # the forgery covers nothing
        assert run.by_key(e["s3Object"])["status"] != "valid"


def _history(run) -> list[tuple]:
    return sorted((r.get("key"), r.get("status"), r.get("reason"), orjson.dumps(r.get("deleted")),
                   tuple((v["version_id"], v["delete_marker"], v["status"], v["reason"]) for v in r.get("versions", [])))
                  for r in run.records if r["kind"] != "gap")


def test_acquire_keeps_every_version_and_the_offline_verdicts_match(world, tmp_path):
    trail = world.deploy(versioning=True)
    s3 = world.client("s3")
    digest = trail.digests(region=R1)[2]
    log = trail.logs(region="eu-west-1")[0]
    s3.delete_object(Bucket=digest.ref.bucket, Key=digest.ref.key)
    for _ in range(2):  # two rewrites: three versions
        s3.put_object(Bucket=log.ref.bucket, Key=log.ref.key, Body=_tampered_body(log.body),
                      ServerSideEncryption="AES256")
    live = world.validate(trail)
    dest = tmp_path / "evidence"
    acq = world.acquire(trail, dest)
    assert acq.exit_code == 0, acq.stderr
    lines = [orjson.loads(x) for x in (dest / "manifest.jsonl").read_bytes().splitlines()]
    header, entries = lines[0], lines[1:]
    assert header["buckets"][trail.spec.bucket]["versioning"] == "Enabled"
    of_digest = [e for e in entries if e["key"] == digest.ref.key]
    assert [(e["is_latest"], e["delete_marker"], e["file"] is None) for e in of_digest] == [
        (True, True, True), (False, False, False)]  # the marker, then CloudTrail's version with its bytes
    of_log = [e for e in entries if e["key"] == log.ref.key]
    assert "is_latest" not in of_log[0] and len(of_log) == 4  # the object's line, then its three versions
    files = [e["file"] for e in of_log if e["file"] is not None]
    assert len(set(files)) == len(files) == 3  # the current file and two older versions: none collide
    assert of_log[1]["is_latest"] and of_log[1]["file"] is None  # the current version: the object's line holds it
    offline = world.validate_evidence(trail, "--manifest-sha256", acq.stdout.split()[1], path=dest)
    assert offline.exit_code == live.exit_code == 1
    assert offline.verdicts() == live.verdicts()
    assert _history(offline) == _history(live)
    rec = offline.by_key(log.ref.key)
    assert rec["rewritten"] and [v["status"] for v in rec["versions"]] == ["invalid", "invalid", "valid"]


# --- Object Lock ---------------------------------------------------------------------------------------


def test_object_lock_compliance_retention_is_reported_and_says_the_objects_cannot_have_been_rewritten(world):
    trail = world.deploy(object_lock={"Mode": "COMPLIANCE", "Days": 365}, regions=("us-east-1",))
    s3 = world.client("s3")
    log = trail.logs(region=R1)[0]
    # an upload with its own, weaker retention: GOVERNANCE can be lifted by whoever may bypass it
    s3.put_object(Bucket=log.ref.bucket, Key=log.ref.key, Body=log.body, ServerSideEncryption="AES256",
                  ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=trail.acquired_at + timedelta(days=3650))
    run = world.validate(trail)
    assert run.summary["versioning"] == "Enabled"
    assert run.summary["object_lock"] == {"enabled": True, "mode": "COMPLIANCE", "days": 365, "years": None}
    digest = run.by_key(trail.digests(region=R1)[0].ref.key)
    ret = digest["retention"]
    assert (ret["mode"], ret["in_force"], ret["since_write"]) == ("COMPLIANCE", True, True)
    assert digest["immutable"] is True and "cannot have been rewritten or deleted since it was written" in digest["message"]
    assert digest["status"] == "valid"
    rewritten = run.by_key(log.ref.key)
    assert rewritten["retention"]["mode"] == "GOVERNANCE" and "immutable" not in rewritten
    assert rewritten["rewritten"] is True and rewritten["versions"][1]["status"] == "valid"
    others = [r for r in run.of("log") if r["key"] != log.ref.key]
    assert others and all(r["immutable"] for r in others)


def test_without_versioning_no_history_fields_appear(world):
    trail = world.deploy(regions=("us-east-1",))
    run = world.validate(trail)
    assert run.exit_code == 0
    assert run.summary["versioning"] is None and run.summary["object_lock"]["enabled"] is False
    assert not [r for r in run.records if {"versions", "deleted", "rewritten", "retention"} & set(r)]
    assert not world.state.calls_of("ListObjectVersions")


def test_versions_not_listable_is_a_warning_and_the_validation_goes_on(world):
    trail = world.deploy(versioning=True, regions=("us-east-1",))
    digest = trail.digests(region=R1)[1]
    world.client("s3").delete_object(Bucket=digest.ref.bucket, Key=digest.ref.key)
    world.state.denied_version_listing.add(trail.spec.bucket)  # no s3:ListBucketVersions
    run = world.validate(trail)
    assert run.exit_code == 1 and run.summary is not None
    rec = run.by_key(digest.ref.key)
    assert (rec["status"], rec["reason"]) == ("missing", "not_found") and "versions" not in rec
    assert "could not be listed" in run.stderr and "CloudTrail-Digest/us-east-1/" in run.stderr


# --- stray objects -------------------------------------------------------------------------------------


def test_stray_objects_in_the_trail_folders_are_warnings_that_leave_the_trail_verdicts_alone(world):
    trail = world.deploy(regions=("us-east-1",))
    s3 = world.client("s3")
    root = f"AWSLogs/{ACCOUNT}/"
    log_name = trail.logs(region=R1)[0].ref.key.rsplit("/", 1)[1]
    strays = [f"{root}CloudTrail/{R1}/2026/11/02/exfil-notes.txt",
              f"{root}CloudTrail/{R1}/2026/11/05/{log_name}",  # a CloudTrail name in the wrong date folder
              f"{root}CloudTrail-Digest/{R1}/2026/11/02/backup.json.gz"]
    for key in strays:
        s3.put_object(Bucket=trail.spec.bucket, Key=key, Body=b"x", ServerSideEncryption="AES256")
    run = world.validate(trail)
    assert run.exit_code == 3
    assert sorted(r["key"] for r in run.of("object", "warning", "stray")) == sorted(strays)
    assert run.summary["objects"] == {"warning": 3}
    assert run.summary["digests"] == {"valid": len(trail.digests())} and run.summary["logs"] == {
        "valid": len(trail.logs())}
