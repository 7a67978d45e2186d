"""Hostile content: every byte from storage is an attacker's. Each case gets a precise reason; the run goes on."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.helpers import run_measuring_rss, run_memory
from validator.errors import AccessDeniedError
from validator.model import ObjectRef
from validator.sources.evidence import EvidenceWriter, object_path
from validator.synth import generate
from validator.synth import tamper as T
from validator.synth.hostile import gzip_bomb, huge_json_digest, nested_json
from validator.synth.memory import MemorySource

R1 = "us-east-1"
CTV = str(Path(sys.executable).with_name("ctvalidate"))


@pytest.fixture(scope="module")
def bomb_evidence(tmp_path_factory):
    """An evidence directory whose first us-east-1 log is a 2 GiB gzip bomb (2 MB on disk)."""
    trail = generate(regions=(R1,), hours=3)
    victim = T.log_at(trail, R1, 0)
    T._rewrite(trail.objects[victim.ref], gzip_bomb(2 << 30))
    path = tmp_path_factory.mktemp("bomb") / "ev"
    trail.write_evidence(str(path))
    return trail, path, victim.ref


def test_two_gigabyte_gzip_bomb_is_hash_mismatch_in_bounded_memory(bomb_evidence, tmp_path):
    trail, path, victim = bomb_evidence
    stdout, _, code, peak_mib = run_measuring_rss(
        [CTV, "validate", "--trail-arn", trail.arn, "--source", str(path), "--output", "json"],
        str(tmp_path / "rss"))
    lines = [json.loads(x) for x in stdout.splitlines()]
    rec = next(x for x in lines if x.get("key") == victim.key)
    assert (rec["status"], rec["reason"]) == ("invalid", "hash_mismatch")
    assert code == 1
    assert peak_mib < 200, f"peak RSS {peak_mib:.0f} MiB"


def test_ctrl_c_prints_the_partial_summary_and_exits_130(bomb_evidence):
    trail, path, _ = bomb_evidence
    p = subprocess.Popen([CTV, "validate", "--trail-arn", trail.arn, "--source", str(path), "--output", "json",
                          "--workers", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)  # the bomb takes seconds to hash
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    summary = json.loads(out.splitlines()[-1])
    assert summary["kind"] == "summary" and summary["interrupted"] is True and summary["exit_code"] == 130
    assert "Traceback" not in err


def _replace_digest_body(trail, n, body):
    victim = T.digest_at(trail, R1, n)
    T._rewrite(trail.objects[victim.ref], body)
    return victim.ref


@pytest.mark.parametrize("body,needle", [
    (huge_json_digest(65 << 20), "more than"),
    (nested_json(200_000), "not JSON"),
    (gzip.compress(b'{"awsAccountId": "\xff\xfe not utf-8"}'), "not JSON"),
    (gzip.compress(b"\x00" * 100), "not JSON"),
])
def test_malformed_digest_bodies_are_invalid_format(body, needle):
    trail = generate(regions=(R1,), hours=4)
    ref = _replace_digest_body(trail, 1, body)
    run = run_memory(trail)
    rec = next(r for r in run.digests if r.key == ref.key)
    assert (rec.verdict.status, rec.verdict.reason) == ("invalid", "invalid_format")
    assert needle in rec.verdict.message
    assert len(run.digests) == 4 and run.exit_code == 1


@pytest.mark.parametrize("field,value", [
    ("digestEndTime", "9999-12-31T23:59:59Z"),
    ("digestStartTime", "0001-01-01T00:00:00+05:00"),
    ("digestStartTime", "2030-01-01T00:00:00Z"),  # after its end
    ("logFiles", [{"s3Bucket": 1, "s3Object": None, "hashValue": []}]),
    ("previousDigestS3Bucket", {"nested": True}),
    ("digestPublicKeyFingerprint", 12345),
])
def test_wrong_types_and_absurd_times_are_invalid_format(field, value):
    trail = generate(regions=(R1,), hours=4)
    victim = T.digest_at(trail, R1, 2)
    doc = trail.digest_doc(victim.ref)
    doc[field] = value
    T._rewrite(trail.objects[victim.ref], gzip.compress(orjson.dumps(doc)))
    run = run_memory(trail)
    rec = next(r for r in run.digests if r.key == victim.ref.key)
    assert (rec.verdict.status, rec.verdict.reason) == ("invalid", "invalid_format")


class _DenyingSource(MemorySource):
    def __init__(self, trail, denied_bucket):
        super().__init__(trail)
        self.denied = denied_bucket

    def open(self, ref):
        if ref.bucket == self.denied:
            raise AccessDeniedError(f"Access Denied to s3://{ref.bucket}")
        return super().open(ref)

    def head(self, ref):
        if ref.bucket == self.denied:
            raise AccessDeniedError("Access Denied")
        return super().head(ref)


def test_previous_digest_in_a_bucket_the_caller_cannot_read_is_unverifiable():
    from validator.model import TrailArn
    from validator.pipeline import Validation
    from validator.policy import RunConfig
    trail = generate(regions=(R1,), hours=3)
    d0, d1, _ = trail.digests()
    T.resign(trail, d0.ref, lambda doc: doc.update(digestS3Bucket="forbidden-bucket"))
    T.resign(trail, d1.ref, lambda doc: doc.update(previousDigestS3Bucket="forbidden-bucket"))
    obj = trail.objects.pop(d0.ref)
    new = ObjectRef("forbidden-bucket", d0.ref.key)
    trail.objects[new] = T.StoredObject(T.replace(obj.meta, ref=new), obj.body)
    v = Validation(_DenyingSource(trail, "forbidden-bucket"), RunConfig(trail=TrailArn.parse(trail.arn)), None, None,
                   now=trail.acquired_at)
    records = list(v.records())
    rec = next(r for r in records if r.kind == "digest" and r.bucket == "forbidden-bucket")
    assert (rec.verdict.status, rec.verdict.reason) == ("unverifiable", "access_denied")
    assert v.summary.exit_code == 3


def test_unsafe_keys_get_hashed_file_names_inside_objects(tmp_path):
    for key in ["AWSLogs/../../etc/passwd", "/abs/key", "a//b", "a\\b", "."]:
        rel = object_path("bucket", key)
        assert rel.startswith("objects/_/") and ".." not in rel
    assert object_path("b", "AWSLogs/1/x.json.gz") == "objects/b/AWSLogs/1/x.json.gz"
    w = EvidenceWriter(tmp_path / "ev")
    from validator.model import ObjectMeta
    w.add(ObjectMeta(ref=ObjectRef("bucket", "../../escape")), [b"data"])
    assert not (tmp_path / "escape").exists()
    assert list((tmp_path / "ev" / "objects" / "_").iterdir())


def test_symlinked_folder_inside_evidence_is_not_followed(tmp_path):
    trail = generate(regions=(R1,), hours=2)
    path = tmp_path / "ev"
    trail.write_evidence(str(path))
    day = path / "objects" / trail.spec.bucket / "AWSLogs" / trail.spec.trail_account / "CloudTrail" / R1
    moved = tmp_path / "elsewhere"
    day.rename(moved)
    day.symlink_to(moved, target_is_directory=True)
    p = subprocess.run([CTV, "validate", "--trail-arn", trail.arn, "--source", str(path), "--output", "json"],
                       capture_output=True, text=True, timeout=120)
    logs = [json.loads(x) for x in p.stdout.splitlines() if '"kind":"log"' in x]
    assert logs and {(x["status"], x["reason"]) for x in logs} == {("invalid", "evidence_modified")}
    assert p.returncode == 1


@pytest.mark.parametrize("field,value", [
    ("digestEndTime", -1),  # an epoch number, and a negative one
    ("digestEndTime", "1969-12-31T23:59:59Z"),  # before the epoch
    ("digestStartTime", "+10000-01-01T00:00:00Z"),
    ("digestEndTime", "2026-02-30T00:00:00Z"),  # no such day
    ("digestEndTime", "2026-11-02T01:00:00" + "9" * 5000 + "Z"),
    ("logFiles", {"s3Object": "x"}),  # an object where a list belongs
    ("logFiles", [None, 3, "x"]),
    ("awsAccountId", ["111122223333"]),
    ("previousDigestHashValue", 10 ** 40),  # beyond 64 bits
])
def test_more_wrong_types_and_absurd_times_are_invalid_format(field, value):
    trail = generate(regions=(R1,), hours=4)
    victim = T.digest_at(trail, R1, 2)
    doc = trail.digest_doc(victim.ref)
    doc[field] = value
    T._rewrite(trail.objects[victim.ref], gzip.compress(json.dumps(doc).encode()))
    run = run_memory(trail)
    rec = next(r for r in run.digests if r.key == victim.ref.key)
    assert (rec.verdict.status, rec.verdict.reason) == ("invalid", "invalid_format"), rec.verdict
    assert len(run.digests) == 4 and run.exit_code == 1


@pytest.mark.parametrize("body", [
    gzip.compress(b"\xff\xfe\x00garbage" * 100),  # a log that is not UTF-8 (hashed as bytes: a mismatch)
    gzip.compress(b"[" * 100_000),  # deeply nested (never parsed to be hashed)
    b"",  # empty
    b"\x1f\x8b",  # a gzip header cut short
])
def test_hostile_log_bodies_get_a_precise_reason(body):
    trail = generate(regions=(R1,), hours=3)
    victim = T.log_at(trail, R1, 1)
    T._rewrite(trail.objects[victim.ref], body)
    run = run_memory(trail)
    rec = next(r for r in run.logs if r.key == victim.ref.key)
    assert rec.verdict.status == "invalid" and rec.verdict.reason in ("hash_mismatch", "invalid_format")
    assert rec.verdict.message
    assert [r.key for r in run.logs if r.verdict.status != "valid"] == [victim.ref.key]


@pytest.mark.parametrize("file", ["/etc/passwd", "objects/../../../../etc/passwd", "objects//etc/passwd",
                                  "objects/./x", "objects\\..\\x", "../outside"])
def test_manifest_naming_a_path_outside_objects_is_never_opened(tmp_path, file):
    trail = generate(regions=(R1,), hours=2)
    path = tmp_path / "ev"
    trail.write_evidence(str(path))
    victim = T.log_at(trail, R1, 0)
    manifest = path / "manifest.jsonl"
    lines = manifest.read_bytes().split(b"\n")
    for i, line in enumerate(lines):
        if victim.ref.key.encode() in line:
            d = orjson.loads(line)
            d["file"] = file
            lines[i] = orjson.dumps(d)
    manifest.write_bytes(b"\n".join(lines))
    p = subprocess.run([CTV, "validate", "--trail-arn", trail.arn, "--source", str(path), "--output", "json"],
                       capture_output=True, text=True, timeout=120)
    rec = next(json.loads(x) for x in p.stdout.splitlines() if victim.ref.key in x)
    assert (rec["status"], rec["reason"]) == ("invalid", "evidence_modified")
    assert "outside objects/" in rec["message"] or "link" in rec["message"]
    assert p.returncode == 1 and "Traceback" not in p.stderr


def test_a_public_keys_file_whose_key_lies_about_its_fingerprint_is_exit_2(tmp_path):
    """--public-keys is the trust anchor: a key whose bytes do not hash to its fingerprint stops the run."""
    trail = generate(regions=(R1,), hours=2)
    path = tmp_path / "ev"
    trail.write_evidence(str(path))
    doc = trail.public_keys_doc()
    assert len(doc["PublicKeyList"]) >= 2
    doc["PublicKeyList"][0]["Value"] = doc["PublicKeyList"][1]["Value"]
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(doc))
    p = subprocess.run([CTV, "validate", "--trail-arn", trail.arn, "--source", str(path), "--public-keys", str(keys)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stdout == ""
    assert "lies" in p.stderr and doc["PublicKeyList"][0]["Fingerprint"] in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
