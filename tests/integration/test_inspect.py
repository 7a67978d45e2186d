"""`ctvalidate inspect` against the loopback endpoint: encryption expected and found, object-level logging, limits.

moto applies a bucket's default encryption to uploads without encryption headers, as S3 does; the proxy
adds the trail status fields moto lacks and refuses what a test asks it to (GetBucketEncryption, DescribeKey, ListTrails).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from .conftest import ACCOUNT, run_cli

pytestmark = pytest.mark.integration


def inspect(world, arn: str, *extra: str, output: str = "json"):
    # --output=FORMAT: run_cli parses "--output json" as validate's JSON Lines
    run = run_cli(["inspect", "--trail-arn", arn, "--endpoint-url", world.endpoint, f"--output={output}", *extra])
    doc: dict[str, Any] | None = None
    if output == "json" and run.exit_code != 2:
        lines = [ln for ln in run.stdout.splitlines() if ln.strip()]
        assert len(lines) == 1, run.stdout  # one JSON object
        doc = orjson.loads(lines[0])
        assert doc["kind"] == "inspect" and doc["exit_code"] == run.exit_code
    return run, doc


def classes(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["object_class"]: c for c in doc["encryption"]}


def put_other(world, bucket: str, key: str = "reports/2026/summary.csv", **kwargs: Any) -> None:
    world.client("s3").put_object(Bucket=bucket, Key=key, Body=b"a,b\n1,2\n", **kwargs)


def test_trail_without_kms_in_a_kms_default_bucket(world):
    """'Encryption: No' is SSE-S3 for logs and digests; other objects get the bucket's key."""
    trail = world.deploy(kms_key_arn=None, bucket_default_key="create")
    bucket_key = trail.spec.bucket_default_key
    put_other(world, trail.spec.bucket)

    run, doc = inspect(world, trail.arn)
    assert run.exit_code == 0, run.stdout + run.stderr
    c = classes(doc)
    assert c["log"]["expected"] == {"encryption": "SSE-S3", "kms_key_id": None, "why": c["log"]["expected"]["why"]}
    assert c["digest"]["expected"]["encryption"] == "SSE-S3"
    assert (c["other"]["expected"]["encryption"], c["other"]["expected"]["kms_key_id"]) == ("SSE-KMS", bucket_key)
    for cls in ("log", "digest"):
        assert c[cls]["status"] == "as_expected"
        regions = {s["region"] for s in c[cls]["samples"]}
        assert regions == {"us-east-1", "eu-west-1"}
        assert all(s["found"]["sse"] == "AES256" and s["status"] == "valid" for s in c[cls]["samples"])
    [other] = c["other"]["samples"]
    assert other["key"] == "reports/2026/summary.csv"
    assert (other["found"]["sse"], other["found"]["kms_key_id"]) == ("aws:kms", bucket_key)
    assert doc["bucket_encryption"]["kms_key_id"] == bucket_key
    assert "whatever the bucket's default" in c["log"]["expected"]["why"]


def test_trail_key_cmk2_in_a_cmk1_bucket_flags_a_log_reuploaded_under_cmk1(world):
    trail = world.deploy(kms_key_arn="create", bucket_default_key="create")
    cmk2, cmk1 = trail.spec.kms_key_arn, trail.spec.bucket_default_key
    put_other(world, trail.spec.bucket)
    s3 = world.client("s3")
    ref = trail.logs(region="eu-west-1")[0].ref  # the oldest log: found by its write time, not its name
    body = s3.get_object(Bucket=ref.bucket, Key=ref.key)["Body"].read()
    s3.put_object(Bucket=ref.bucket, Key=ref.key, Body=body)  # no headers: S3 applies CMK1

    run, doc = inspect(world, trail.arn)
    assert run.exit_code == 3, run.stdout + run.stderr
    c = classes(doc)
    assert (c["log"]["expected"]["encryption"], c["log"]["expected"]["kms_key_id"]) == ("SSE-KMS", cmk2)
    assert c["digest"]["expected"]["encryption"] == "SSE-S3"
    assert (c["other"]["expected"]["encryption"], c["other"]["expected"]["kms_key_id"]) == ("SSE-KMS", cmk1)
    assert c["digest"]["status"] == c["other"]["status"] == "as_expected"
    assert c["log"]["status"] == "disagrees"
    flagged = [s for s in c["log"]["samples"] if s["status"] != "valid"]
    assert [(s["key"], s["status"], s["reason"]) for s in flagged] == [(ref.key, "warning", "unexpected_encryption")]
    assert cmk1 in flagged[0]["message"] and "default key" in flagged[0]["message"]
    rest = [s for s in c["log"]["samples"] if s["key"] != ref.key]
    assert rest and all(s["found"]["kms_key_id"] == cmk2 for s in rest)

    # validate flags the same object with the same reason
    v = world.validate(trail)
    assert [(r["key"], r["reason"]) for r in v.records if r.get("status") == "warning"] == \
        [(ref.key, "unexpected_encryption")]


def test_object_level_logging_data_resource_without_management_events(world):
    trail = world.deploy()
    watched = f"watched-{world.suffix}"
    world.client("s3").create_bucket(Bucket=watched)
    world.client("cloudtrail").put_event_selectors(TrailName=trail.spec.trail_name, EventSelectors=[{
        "ReadWriteType": "WriteOnly", "IncludeManagementEvents": False,
        "DataResources": [{"Type": "AWS::S3::Object", "Values": [f"arn:aws:s3:::{watched}/uploads/"]}]}])

    run, doc = inspect(world, trail.arn)
    assert run.exit_code == 0, run.stdout + run.stderr
    oll = doc["object_level_logging"]
    assert oll["enabled"] is True and oll["management_events"] is False and oll["form"] == "event_selectors"
    assert [(s["bucket"], s["prefix"], s["read_write"]) for s in oll["s3"]] == [(watched, "uploads/", "WriteOnly")]
    assert oll["trail_bucket_logged"] is False

    text, _ = inspect(world, trail.arn, output="text")
    assert f"WriteOnly data events on s3://{watched}/uploads/" in text.stdout
    assert "management events: not included" in text.stdout


def test_advanced_selectors_on_every_bucket_include_the_trails_own(world):
    trail = world.deploy()
    world.client("cloudtrail").put_event_selectors(TrailName=trail.spec.trail_name, AdvancedEventSelectors=[
        {"Name": "management", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]},
        {"Name": "s3 objects", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]},
                                                  {"Field": "resources.type", "Equals": ["AWS::S3::Object"]}]}])
    run, doc = inspect(world, trail.arn)
    assert run.exit_code == 0, run.stdout
    oll = doc["object_level_logging"]
    assert oll["form"] == "advanced_event_selectors" and oll["management_events"] is True
    assert [(s["bucket"], s["selector"]) for s in oll["s3"]] == [(None, "AdvancedEventSelectors[1] 's3 objects'")]
    assert oll["trail_bucket_logged"] is True
    assert any("its own bucket" in n for n in doc["notes"])


def test_digest_reuploaded_with_sse_kms_is_not_sse_s3(world):
    trail = world.deploy(kms_key_arn="create")
    ref = trail.digests(region="us-east-1")[0].ref
    world.client("s3").copy_object(Bucket=ref.bucket, Key=ref.key, CopySource={"Bucket": ref.bucket, "Key": ref.key},
                                   MetadataDirective="COPY", ServerSideEncryption="aws:kms")
    run, doc = inspect(world, trail.arn)
    assert run.exit_code == 3, run.stdout
    c = classes(doc)
    assert c["digest"]["status"] == "disagrees" and c["log"]["status"] == "as_expected"
    flagged = [(s["key"], s["status"], s["reason"]) for s in c["digest"]["samples"] if s["status"] != "valid"]
    assert flagged == [(ref.key, "warning", "not_sse_s3")]


def test_unknown_trail_is_exit_2_with_one_line(world):
    world.deploy()
    arn = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/no-such-trail-{world.suffix}"
    for output in ("json", "text"):
        run, _ = inspect(world, arn, output=output)
        assert run.exit_code == 2
        assert run.stdout == ""
        lines = run.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("ctvalidate: error: cannot read the trail") and arn in lines[0]


def test_unreadable_bucket_is_exit_2(world):
    trail = world.deploy()
    world.state.denied_list_buckets.add(trail.spec.bucket)
    run, _ = inspect(world, trail.arn)
    assert run.exit_code == 2 and run.stdout == ""
    assert "s3:ListBucket" in run.stderr and len(run.stderr.splitlines()) == 1
    run, _ = inspect(world, trail.arn, "--s3-bucket", f"no-such-bucket-{world.suffix}")
    assert run.exit_code == 2 and run.stdout == "" and "does not exist" in run.stderr


def test_bucket_encryption_refused_is_unknown_and_exit_3(world):
    trail = world.deploy(bucket_default_key="create")
    put_other(world, trail.spec.bucket)
    world.state.denied_bucket_ops.add((trail.spec.bucket, "GetBucketEncryption"))
    run, doc = inspect(world, trail.arn)
    assert run.exit_code == 3, run.stdout
    assert "AccessDenied" in doc["bucket_encryption"]["error"]
    c = classes(doc)
    assert c["other"]["expected"]["encryption"] == "unknown" and c["other"]["status"] == "unknown"
    assert [s["reason"] for s in c["other"]["samples"]] == ["bucket_encryption_unknown"]
    assert c["log"]["status"] == c["digest"]["status"] == "as_expected"  # logs and digests do not depend on it
    text, _ = inspect(world, trail.arn, output="text")
    assert "bucket default: unknown (AccessDenied" in text.stdout


def test_trails_in_the_region_count_against_five(world):
    trail = world.deploy(regions=("us-east-1",))
    other_region = world.deploy(regions=("eu-west-1", "us-east-1"), home_region="eu-west-1")  # multi-region
    ct = world.client("cloudtrail")
    assert other_region.arn in {t["TrailARN"] for t in ct.list_trails()["Trails"]}  # listed here, homed elsewhere
    for i in range(3):
        ct.create_trail(Name=f"extra-{world.suffix}-{i}", S3BucketName=trail.spec.bucket)
    run, doc = inspect(world, trail.arn)
    tr = doc["trails_in_region"]
    assert (tr["region"], tr["count"], tr["limit"]) == ("us-east-1", 4, 5)
    assert other_region.arn not in tr["trails"] and trail.arn in tr["trails"]
    ct.create_trail(Name=f"extra-{world.suffix}-3", S3BucketName=trail.spec.bucket)
    run, doc = inspect(world, trail.arn)
    assert doc["trails_in_region"]["count"] == 5
    assert any("limit of 5" in n for n in doc["notes"])


def test_organization_trail_locations(world):
    trail = world.deploy(org_id="o-placeholder", accounts=(ACCOUNT, "444455556666"), regions=("us-east-1",))
    run, doc = inspect(world, trail.arn)
    assert run.exit_code == 0, run.stdout + run.stderr
    org = doc["trail"]["organization_id"]
    assert org and org.startswith("o-")
    locs = {(loc["account_id"], loc["region"]): loc for loc in doc["locations"]}
    assert set(locs) == {(ACCOUNT, "us-east-1"), ("444455556666", "us-east-1")}
    assert locs[("444455556666", "us-east-1")]["digests"] == \
        f"s3://{trail.spec.bucket}/AWSLogs/{org}/444455556666/CloudTrail-Digest/us-east-1/"


def test_text_output_reads_as_an_explanation(world):
    trail = world.deploy(kms_key_arn="create", bucket_default_key="create", prefix="audit")
    put_other(world, trail.spec.bucket)
    with world.state.lock:
        world.state.trail_status[trail.arn]["LatestDigestDeliveryError"] = "AccessDenied"
    run, _ = inspect(world, trail.arn, output="text")
    print(run.stdout)
    assert run.exit_code == 3  # a delivery error
    out = run.stdout
    assert f"Trail {trail.arn}" in out
    assert "delivery errors: digest delivery: AccessDenied" in out
    assert f"Log files: expected SSE-KMS with {trail.spec.kms_key_arn}: as expected" in out
    assert "Digest files: expected SSE-S3: as expected" in out
    assert f"Other objects: expected SSE-KMS with {trail.spec.bucket_default_key}: as expected" in out
    assert f"x SSE-KMS key {trail.spec.kms_key_arn} (the trail's key)" in out
    assert f"1 x SSE-KMS key {trail.spec.bucket_default_key} (the bucket's default key)" in out
    assert f"digests s3://{trail.spec.bucket}/audit/AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/" in out
    assert "Trails in us-east-1: 1/5" in out
    assert "Result:" in out.splitlines()[-1]


def _alias_trail(world):
    trail = world.deploy(kms_key_arn="create")
    alias = f"alias/ct-{world.suffix}"
    world.client("kms").create_alias(AliasName=alias, TargetKeyId=trail.spec.kms_key_arn)
    world.client("cloudtrail").update_trail(Name=trail.spec.trail_name, KmsKeyId=alias)
    return trail, alias


def test_trail_key_given_as_an_alias_is_resolved_to_the_key_s3_reports(world):
    trail, alias = _alias_trail(world)
    run, doc = inspect(world, trail.arn)
    assert run.exit_code == 0, run.stdout
    assert (doc["trail"]["kms_key_configured"], doc["trail"]["kms_key_id"]) == (alias, trail.spec.kms_key_arn)
    assert classes(doc)["log"]["status"] == "as_expected"


def test_trail_key_alias_that_cannot_be_resolved_is_not_a_disagreement(world):
    trail, alias = _alias_trail(world)
    world.state.denied_operations.add("DescribeKey")
    run, doc = inspect(world, trail.arn)
    assert run.exit_code == 3, run.stdout
    log = classes(doc)["log"]
    assert log["status"] == "unknown" and log["expected"]["kms_key_id"] == alias
    assert {(s["status"], s["reason"]) for s in log["samples"]} == {("unverifiable", "key_unresolved")}


def test_log_overwritten_with_sse_c_is_foreign_encryption(world):
    def to_sse_c(trail):
        obj = trail.logs(region="us-east-1")[0]
        trail.with_meta(obj.ref, sse=None, kms_key_id=None, sse_customer_algorithm="AES256")
        to_sse_c.ref = obj.ref

    trail = world.deploy(mutate=to_sse_c, kms_key_arn="create")
    run, doc = inspect(world, trail.arn)
    assert run.exit_code == 3, run.stdout
    flagged = [(s["key"], s["status"], s["reason"]) for s in classes(doc)["log"]["samples"] if s["status"] != "valid"]
    assert flagged == [(to_sse_c.ref.key, "invalid", "foreign_encryption")]


def test_other_object_put_with_explicit_sse_s3_in_a_kms_bucket_is_flagged(world):
    trail = world.deploy(bucket_default_key="create")
    put_other(world, trail.spec.bucket, key="a.txt")
    put_other(world, trail.spec.bucket, key="b.txt", ServerSideEncryption="AES256")
    run, doc = inspect(world, trail.arn)
    assert run.exit_code == 3, run.stdout
    other = {s["key"]: s for s in classes(doc)["other"]["samples"]}
    assert set(other) == {"a.txt", "b.txt"}
    assert (other["a.txt"]["status"], other["b.txt"]["status"], other["b.txt"]["reason"]) == \
        ("valid", "warning", "unexpected_encryption")


def test_a_small_sample_reaches_a_rewrite_by_its_write_time(world):
    trail = world.deploy(bucket_default_key="create")
    for i in range(4):
        put_other(world, trail.spec.bucket, key=f"other/{i}.txt")
    time.sleep(1.1)  # LastModified has a resolution of one second
    s3 = world.client("s3")
    ref = trail.logs(region="us-east-1")[0].ref  # the oldest by name
    s3.put_object(Bucket=ref.bucket, Key=ref.key, Body=s3.get_object(Bucket=ref.bucket, Key=ref.key)["Body"].read())

    run, doc = inspect(world, trail.arn, "--sample", "1")
    assert run.exit_code == 3, run.stdout
    c = classes(doc)
    east = [s for s in c["log"]["samples"] if s["region"] == "us-east-1"]
    assert [(s["key"], s["reason"]) for s in east] == [(ref.key, "unexpected_encryption")]
    assert c["log"]["listed"] == {"us-east-1": len(trail.logs(region="us-east-1")),
                                  "eu-west-1": len(trail.logs(region="eu-west-1"))}
    assert c["other"]["listed"] == {"bucket": 4}
    heads = world.state.calls_of("HeadObject")
    assert len(heads) == sum(len(c[k]["samples"]) for k in ("log", "digest", "other"))


def test_selectors_and_trail_list_refused_are_said_not_fatal(world):
    trail = world.deploy()
    world.state.denied_operations.update({"GetEventSelectors", "ListTrails"})
    run, doc = inspect(world, trail.arn)
    assert run.exit_code == 0, run.stdout
    assert "AccessDeniedException" in doc["object_level_logging"]["error"]
    assert doc["trails_in_region"]["count"] is None and "ListTrails" in doc["trails_in_region"]["error"]
    text, _ = inspect(world, trail.arn, output="text")
    assert "Trails in us-east-1: unknown" in text.stdout


def test_a_bucket_without_the_trails_folders_contradicts_its_status(world):
    trail = world.deploy()
    run, doc = inspect(world, trail.arn, "--account-id", "999988887777")
    assert run.exit_code == 3, run.stdout
    assert doc["locations"] == [] and "999988887777" in doc["anomalies"][0]
    assert {c["status"] for c in doc["encryption"] if c["object_class"] != "other"} == {"no_sample"}
    world.state.trail_status.clear()  # no digest delivered yet: nothing to contradict
    run, doc = inspect(world, trail.arn, "--account-id", "999988887777")
    assert run.exit_code == 0 and doc["anomalies"] == []
    assert any("nothing to check" in n for n in doc["notes"])


def test_a_folder_that_cannot_be_listed_is_unknown_and_the_rest_is_sampled(world):
    trail = world.deploy()
    folder = f"AWSLogs/{ACCOUNT}/CloudTrail/eu-west-1/"
    world.state.denied_list_prefixes.add((trail.spec.bucket, folder))
    run, doc = inspect(world, trail.arn)
    assert run.exit_code == 3, run.stdout
    c = classes(doc)
    assert c["log"]["status"] == "unknown" and c["log"]["errors"][0].startswith("eu-west-1: cannot list")
    assert {s["region"] for s in c["log"]["samples"]} == {"us-east-1"}
    assert c["digest"]["status"] == "as_expected"
