"""Encryption provenance over S3: what the object's encryption says about who wrote it.

CloudTrail writes digests SSE-S3 and log files SSE-KMS under the trail's key (SSE-S3 without one),
whatever the bucket default. The endpoint (moto behind the test proxy) applies the bucket's default
encryption to uploads without encryption headers, refuses kms:Decrypt for chosen keys, and refuses
SSE-C objects read without their key, as S3 does.
"""

from __future__ import annotations

import pytest

from validator.model import ObjectRef
from validator.synth.s3writer import create_kms_key
from validator.synth.tamper import reencrypt

pytestmark = pytest.mark.integration


def _log_ref(trail, region="us-east-1", n=1) -> ObjectRef:
    return trail.logs(region=region)[n].ref


def test_log_reuploaded_under_bucket_default_key_is_unexpected_encryption(world):
    trail = world.deploy(kms_key_arn="create", bucket_default_key="create")
    ref = _log_ref(trail)
    s3 = world.client("s3")
    # the attacker downloads the log and puts it back unchanged, without encryption headers:
    # S3 encrypts it with the bucket's default key, not the trail's
    body = s3.get_object(Bucket=ref.bucket, Key=ref.key)["Body"].read()
    s3.put_object(Bucket=ref.bucket, Key=ref.key, Body=body)
    assert s3.head_object(Bucket=ref.bucket, Key=ref.key)["SSEKMSKeyId"] == trail.spec.bucket_default_key

    run = world.validate(trail)
    assert run.exit_code == 3, run.stdout
    rec = run.by_key(ref.key)
    assert (rec["status"], rec["reason"]) == ("warning", "unexpected_encryption")
    assert trail.spec.bucket_default_key in rec["message"] and "default key" in rec["message"]
    assert run.problems() == {("log", "warning", "unexpected_encryption"): 1}


def test_digest_reuploaded_with_sse_kms_is_not_sse_s3(world):
    trail = world.deploy(kms_key_arn="create")
    ref = trail.digests(region="eu-west-1")[2].ref
    s3 = world.client("s3")
    # re-upload unchanged (same bytes, same signature metadata) with SSE-KMS
    s3.copy_object(Bucket=ref.bucket, Key=ref.key, CopySource={"Bucket": ref.bucket, "Key": ref.key},
                   MetadataDirective="COPY", ServerSideEncryption="aws:kms")

    run = world.validate(trail)
    assert run.exit_code == 3, run.stdout
    rec = run.by_key(ref.key)
    assert (rec["status"], rec["reason"]) == ("warning", "not_sse_s3")
    assert run.problems() == {("digest", "warning", "not_sse_s3"): 1}


def test_encryption_off_in_a_kms_default_bucket_is_valid(world):
    """'Encryption: No' means SSE-S3 for logs and digests, whatever the bucket's default says."""
    trail = world.deploy(kms_key_arn=None, bucket_default_key="create")
    s3 = world.client("s3")
    enc = s3.get_bucket_encryption(Bucket=trail.spec.bucket)["ServerSideEncryptionConfiguration"]
    assert enc["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    ref = _log_ref(trail)
    assert s3.head_object(Bucket=ref.bucket, Key=ref.key)["ServerSideEncryption"] == "AES256"

    run = world.validate(trail)
    assert run.exit_code == 0, run.stdout
    assert run.summary["logs"] == {"valid": len(trail.logs())}
    assert run.summary["digests"] == {"valid": len(trail.digests())}


def test_log_overwritten_under_a_foreign_kms_key_is_foreign_encryption(world):
    attacker = create_kms_key(world.target, description="attacker's key")
    trail = world.build(kms_key_arn="create")
    ref = _log_ref(trail)
    reencrypt(trail, ref, kms_key=attacker)
    from validator.synth.s3writer import write_trail
    write_trail(trail, world.target)
    world.register(trail)
    world.state.denied_kms_keys.add(attacker)  # the auditor may not use the attacker's key

    run = world.validate(trail)
    assert run.exit_code == 1, run.stdout
    rec = run.by_key(ref.key)
    assert (rec["status"], rec["reason"]) == ("invalid", "foreign_encryption")
    assert attacker in rec["message"]
    assert run.problems() == {("log", "invalid", "foreign_encryption"): 1}


@pytest.mark.parametrize("kind", ["log", "digest"])
def test_object_overwritten_with_sse_c_is_foreign_encryption(world, kind):
    def to_sse_c(trail):
        obj = trail.logs(region="eu-west-1")[0] if kind == "log" else trail.digests(region="eu-west-1")[1]
        trail.with_meta(obj.ref, sse=None, kms_key_id=None, sse_customer_algorithm="AES256")
        to_sse_c.ref = obj.ref

    trail = world.deploy(mutate=to_sse_c, kms_key_arn="create")
    ref = to_sse_c.ref
    assert (ref.bucket, ref.key) in world.state.sse_c  # it went up with a customer key

    run = world.validate(trail)
    assert run.exit_code == 1, run.stdout
    rec = run.by_key(ref.key)
    assert (rec["status"], rec["reason"]) == ("invalid", "foreign_encryption")
    assert "SSE-C" in rec["message"]
    if kind == "log":
        assert run.problems() == {("log", "invalid", "foreign_encryption"): 1}
    else:  # the digest's own log files are covered by no valid digest then
        assert run.problems()[("digest", "invalid", "foreign_encryption")] == 1
        assert set(run.problems()) <= {("digest", "invalid", "foreign_encryption"),
                                       ("log", "unverifiable", "not_covered")}


@pytest.mark.parametrize("wording", ["iam", "ciphertext", "plain"])
def test_trail_key_the_caller_may_not_use_is_kms_access_denied(world, wording):
    """However S3 words the refusal (even a bare 'Access Denied' while HEAD answers), the key is named."""
    trail = world.deploy(kms_key_arn="create")
    key = trail.spec.kms_key_arn
    world.state.denied_kms_keys.add(key)
    world.state.kms_message = wording

    run = world.validate(trail)
    assert run.exit_code == 3, run.stdout
    logs = run.of("log")
    assert logs and all((r["status"], r["reason"]) == ("unverifiable", "kms_access_denied") for r in logs)
    assert len(logs) == len(trail.logs())
    for r in logs:
        assert key in r["message"] and "kms:Decrypt" in r["message"]
    assert run.summary["digests"] == {"valid": len(trail.digests())}  # digests are SSE-S3: readable


def test_archived_log_is_unverifiable(world):
    def archive(trail):
        ref = _log_ref(trail, "eu-west-1", 1)
        trail.with_meta(ref, storage_class="GLACIER")
        archive.ref = ref

    trail = world.deploy(mutate=archive)
    run = world.validate(trail)
    assert run.exit_code == 3, run.stdout
    rec = run.by_key(archive.ref.key)
    assert (rec["status"], rec["reason"]) == ("unverifiable", "archived")
    assert run.problems() == {("log", "unverifiable", "archived"): 1}


@pytest.mark.parametrize("kind", ["log", "digest"])
def test_object_read_refused_is_access_denied(world, kind):
    trail = world.deploy(kms_key_arn="create")
    ref = _log_ref(trail) if kind == "log" else trail.digests(region="us-east-1")[1].ref
    world.state.denied_objects.add((ref.bucket, ref.key))

    run = world.validate(trail)
    assert run.exit_code == 3, run.stdout
    rec = run.by_key(ref.key)
    assert (rec["status"], rec["reason"]) == ("unverifiable", "access_denied")
    if kind == "log":
        assert run.problems() == {("log", "unverifiable", "access_denied"): 1}
    else:
        assert run.problems()[("digest", "unverifiable", "access_denied")] == 1
        assert set(run.problems()) <= {("digest", "unverifiable", "access_denied"),
                                       ("log", "unverifiable", "not_covered")}


def test_late_writes_show_in_the_original_bucket(world):
    """Objects in the endpoint were all written now, weeks after CloudTrail would have: late_write."""
    trail = world.deploy()
    run = world.validate(trail, "--check-write-times")
    assert run.exit_code == 3
    assert {(r["status"], r["reason"]) for r in run.records if r["kind"] != "gap"} == {("warning", "late_write")}
