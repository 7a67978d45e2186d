"""The pure side of `inspect`: expectations per object class, verdicts on samples, event selectors, trail counts,
and the sampling walk over a Source (in memory)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from validator.core.encryption import EncryptionPolicy
from validator.core.inspect import (DIGEST, LOG, ClassReport, Inspection, TrailCount, count_trails,
                                    expected_digest, expected_log, expected_other, judge, object_level_logging,
                                    sample_of)
from validator.inspect import TIE_CAP, _most_recent, _newest_first, _other_objects
from validator.model import BucketEncryption, ObjectMeta, ObjectRef
from validator.sources.base import ListedObject
from validator.synth import StoredObject, TrailSpec, generate
from validator.synth.memory import MemorySource

UTC = timezone.utc
CMK1 = "arn:aws:kms:us-east-1:111122223333:key/11111111-1111-1111-1111-111111111111"
CMK2 = "arn:aws:kms:us-east-1:111122223333:key/22222222-2222-2222-2222-222222222222"
REF = ObjectRef("b", "k")


def meta(sse=None, kms=None, sse_c=None, at: datetime | None = None, ref: ObjectRef = REF) -> ObjectMeta:
    return ObjectMeta(ref=ref, sse=sse, kms_key_id=kms, sse_customer_algorithm=sse_c, last_modified=at)


KMS_BUCKET = BucketEncryption(algorithm="aws:kms", configured_key=CMK1, kms_key=CMK1)
NO_KEY = EncryptionPolicy(known=True, trail_kms_key=None, bucket_default_key=CMK1)
CMK2_TRAIL = EncryptionPolicy(known=True, trail_kms_key=CMK2, bucket_default_key=CMK1)


# --- what each class should have ---------------------------------------------------------------


def test_no_trail_key_means_sse_s3_logs_whatever_the_bucket():
    e = expected_log(NO_KEY)
    assert (e.encryption, e.kms_key) == ("SSE-S3", None) and "Encryption: No" in e.why
    assert judge(e, meta("AES256"), NO_KEY).status == "valid"
    v = judge(e, meta("aws:kms", CMK1), NO_KEY)  # the bucket's default applied: not CloudTrail
    assert (v.status, v.reason) == ("warning", "unexpected_encryption") and "default key" in v.message


def test_trail_key_wins_over_the_bucket_default_for_logs():
    e = expected_log(CMK2_TRAIL)
    assert (e.encryption, e.kms_key) == ("SSE-KMS", CMK2)
    assert judge(e, meta("aws:kms", CMK2), CMK2_TRAIL).status == "valid"
    assert judge(e, meta("aws:kms", CMK2.rsplit("/", 1)[1]), CMK2_TRAIL).status == "valid"  # bare id, same key
    for wrong in (meta("aws:kms", CMK1), meta("AES256")):
        assert judge(e, wrong, CMK2_TRAIL).reason == "unexpected_encryption"


def test_digests_are_sse_s3_whatever_the_keys():
    e = expected_digest()
    assert e.encryption == "SSE-S3"
    assert judge(e, meta("AES256"), CMK2_TRAIL).status == "valid"
    for wrong in (meta("aws:kms", CMK2), meta("aws:kms", CMK1)):
        v = judge(e, wrong, CMK2_TRAIL)
        assert (v.status, v.reason) == ("warning", "not_sse_s3")


@pytest.mark.parametrize("cls", [LOG, DIGEST])
def test_sse_c_is_foreign_encryption(cls):
    e = expected_log(CMK2_TRAIL) if cls == LOG else expected_digest()
    v = judge(e, meta(sse_c="AES256"), CMK2_TRAIL)
    assert (v.status, v.reason) == ("invalid", "foreign_encryption")


def test_other_objects_get_the_bucket_default():
    e = expected_other(KMS_BUCKET)
    assert (e.encryption, e.kms_key) == ("SSE-KMS", CMK1)
    assert judge(e, meta("aws:kms", CMK1), CMK2_TRAIL).status == "valid"
    assert judge(e, meta("aws:kms", CMK2), CMK2_TRAIL).reason == "unexpected_encryption"
    assert judge(e, meta("AES256"), CMK2_TRAIL).reason == "unexpected_encryption"
    for bucket in (BucketEncryption(algorithm="AES256"), BucketEncryption(algorithm=None)):
        e = expected_other(bucket)
        assert e.encryption == "SSE-S3"
        assert judge(e, meta("AES256"), NO_KEY).status == "valid"
        assert judge(e, meta("aws:kms", CMK1), NO_KEY).reason == "unexpected_encryption"


def test_unknown_bucket_default_is_unverifiable_not_a_disagreement():
    e = expected_other(BucketEncryption(error="AccessDenied: Access Denied"))
    assert e.encryption == "unknown" and "s3:GetEncryptionConfiguration" in e.why
    v = judge(e, meta("aws:kms", CMK1), NO_KEY)
    assert (v.status, v.reason) == ("unverifiable", "bucket_encryption_unknown")
    report = ClassReport(e, (sample_of(e, NO_KEY, REF, meta("aws:kms", CMK1)),))
    assert report.status == "unknown"
    assert ClassReport(e).status == "unknown"


def test_an_alias_that_was_not_resolved_cannot_be_compared():
    policy = replace(CMK2_TRAIL, trail_kms_key="alias/cloudtrail")
    v = judge(expected_log(policy), meta("aws:kms", CMK2), policy)
    assert (v.status, v.reason) == ("unverifiable", "key_unresolved")
    bucket = BucketEncryption(algorithm="aws:kms", configured_key="alias/aws/s3", kms_key="alias/aws/s3")
    assert judge(expected_other(bucket), meta("aws:kms", CMK1), policy).reason == "key_unresolved"


def test_class_status_and_exit_code():
    e = expected_log(CMK2_TRAIL)
    ok = sample_of(e, CMK2_TRAIL, REF, meta("aws:kms", CMK2))
    bad = sample_of(e, CMK2_TRAIL, REF, meta("aws:kms", CMK1))
    refused = sample_of(e, CMK2_TRAIL, REF, None, ("access_denied", "HEAD refused"))
    assert refused.verdict.status == "unverifiable"
    assert ClassReport(e).status == "no_sample"
    assert ClassReport(e, (ok,)).status == "as_expected"
    assert ClassReport(e, (ok, refused)).status == "unknown"
    assert ClassReport(e, (ok, bad, refused)).status == "disagrees"
    assert ClassReport(e, (ok,), errors=("eu-west-1: cannot list",)).status == "unknown"
    assert ClassReport(e, errors=("eu-west-1: cannot list",)).status == "unknown"

    def inspection(classes, **status):
        return Inspection("arn", {}, status, "b", "", KMS_BUCKET, classes, object_level_logging({}),
                          TrailCount("us-east-1"), [])

    assert inspection([ClassReport(e, (ok,)), ClassReport(expected_digest())]).exit_code == 0
    assert inspection([ClassReport(e, (ok, bad))]).exit_code == 3
    assert inspection([ClassReport(e, (refused,))]).exit_code == 3
    assert inspection([ClassReport(e, (ok,))], latest_digest_delivery_error="AccessDenied").exit_code == 3


# --- object-level logging --------------------------------------------------------------------------


def test_data_resource_without_management_events_is_object_level_logging():
    oll = object_level_logging({"EventSelectors": [{
        "ReadWriteType": "All", "IncludeManagementEvents": False,
        "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::important/", "arn:aws:s3:::b2/x/"]},
                          {"Type": "AWS::Lambda::Function", "Values": ["arn:aws:lambda"]}]}]})
    assert oll.enabled and not oll.management_events and oll.form == "event_selectors"
    assert [(s.bucket, s.prefix) for s in oll.s3] == [("important", ""), ("b2", "x/")]
    assert oll.other_data == ("AWS::Lambda::Function",)
    assert oll.covers("important", "AWSLogs/") and oll.covers("b2", "x/y/") and not oll.covers("b2", "z/")
    assert not oll.covers("trail-bucket")


def test_all_buckets_value_covers_every_bucket():
    for value in ("arn:aws:s3", "arn:aws:s3:::"):
        oll = object_level_logging({"EventSelectors": [{"DataResources": [
            {"Type": "AWS::S3::Object", "Values": [value]}]}]})
        assert oll.management_events  # IncludeManagementEvents defaults to true
        assert [s.bucket for s in oll.s3] == [None] and oll.covers("any-bucket")


def test_advanced_selectors_with_an_exclusion():
    oll = object_level_logging({"AdvancedEventSelectors": [
        {"Name": "objects but the trail's", "FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Data"]},
            {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
            {"Field": "readOnly", "Equals": ["false"]},
            {"Field": "resources.ARN", "NotStartsWith": ["arn:aws:s3:::trail-bucket/"]}]},
        {"Name": "tables", "FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Data"]},
            {"Field": "resources.type", "Equals": ["AWS::DynamoDB::Table"]}]}]})
    assert oll.form == "advanced_event_selectors" and not oll.management_events
    [scope] = oll.s3
    assert (scope.bucket, scope.read_write, scope.excluding) == (None, "WriteOnly", ("arn:aws:s3:::trail-bucket/",))
    assert oll.covers("other-bucket") and not oll.covers("trail-bucket", "AWSLogs/")
    assert oll.other_data == ("AWS::DynamoDB::Table",)


def test_advanced_selector_starts_with_a_bucket_prefix():
    oll = object_level_logging({"AdvancedEventSelectors": [
        {"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]},
        {"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]},
                            {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
                            {"Field": "resources.ARN", "StartsWith": ["arn:aws:s3:::logs/audit/"]}]}]})
    assert oll.management_events
    assert [(s.bucket, s.prefix, s.read_write) for s in oll.s3] == [("logs", "audit/", "All")]


def test_no_selectors_is_management_events_only_and_hostile_shapes_do_not_crash():
    assert object_level_logging({}).management_events and not object_level_logging({}).enabled
    hostile = {"EventSelectors": [{"DataResources": "x"}, "y", {"DataResources": [{"Type": "AWS::S3::Object",
                                                                                   "Values": "arn:aws:s3"}]}],
               "AdvancedEventSelectors": "z"}
    assert not object_level_logging(hostile).enabled
    failed = object_level_logging(None, "GetEventSelectors failed (AccessDenied)")
    assert failed.error and not failed.enabled


# --- trails in the region -------------------------------------------------------------------------------


def test_only_this_accounts_trails_homed_in_the_region_count():
    arn = "arn:aws:cloudtrail:{r}:{a}:trail/{n}"
    entries = [
        {"TrailARN": arn.format(r="us-east-1", a="111122223333", n="a"), "HomeRegion": "us-east-1"},
        {"TrailARN": arn.format(r="us-east-1", a="111122223333", n="b")},  # no HomeRegion: from the ARN
        {"TrailARN": arn.format(r="eu-west-1", a="111122223333", n="multi"), "HomeRegion": "eu-west-1"},
        {"TrailARN": arn.format(r="us-east-1", a="999999999999", n="org"), "HomeRegion": "us-east-1"},
        {"TrailARN": 5}, "junk",
    ]
    tc = count_trails(entries, "us-east-1", "111122223333")
    assert tc.count == 2 and tc.limit == 5 and all(t.endswith(("/a", "/b")) for t in tc.trails)
    assert TrailCount("us-east-1", error="denied").count is None


# --- sampling over a Source -------------------------------------------------------------------------------


@pytest.fixture
def trail():
    return generate(TrailSpec(regions=("us-east-1",), hours=30, logs_per_hour=(1, 2), rotate_at_hour=None))


def test_newest_day_folders_first(trail):
    source = MemorySource(trail)
    folder = "AWSLogs/111122223333/CloudTrail/us-east-1/"
    keys = [o.ref.key for o in _newest_first(source, trail.spec.bucket, folder)]
    days = [k[len(folder):len(folder) + 10] for k in keys]
    assert days == sorted(days, reverse=True) and len(set(days)) == 2
    assert sorted(keys) == sorted(o.ref.key for o in trail.logs())


def test_most_recent_write_is_sampled_whatever_its_name(trail):
    logs = trail.logs()
    base = datetime(2026, 11, 3, 8, tzinfo=UTC)
    for i, o in enumerate(logs):
        trail.with_meta(o.ref, last_modified=base + timedelta(minutes=i))
    rewritten = logs[0].ref  # the oldest log, rewritten a day later
    trail.with_meta(rewritten, last_modified=base + timedelta(days=1))
    source = MemorySource(trail)
    chosen, listed = _most_recent(_newest_first(source, trail.spec.bucket,
                                                "AWSLogs/111122223333/CloudTrail/us-east-1/"), 2)
    assert listed == len(logs)
    assert [o.ref for o in chosen] == [rewritten, logs[-1].ref]
    everything, _ = _most_recent(iter(list(_newest_first(source, trail.spec.bucket,
                                                         "AWSLogs/111122223333/CloudTrail/us-east-1/"))), 0)
    assert len(everything) == len(logs)


def test_other_objects_skip_every_cloudtrail_folder(trail):
    bucket = trail.spec.bucket
    extra = ["AWSLogs/111122223333/Config/x.json", "AWSLogs/111122223333/CloudTrail-Insight/us-east-1/i.json.gz",
             "AWSLogs/o-abcdefghij/444455556666/CloudTrail/eu-west-1/l.json.gz", "0-first.txt", "zz/last.txt",
             "other-prefix/AWSLogs/555566667777/CloudTrail-Digest/us-east-1/d.json.gz"]
    for key in extra:
        ref = ObjectRef(bucket, key)
        trail.objects[ref] = StoredObject(meta(ref=ref), b"x")
    found, complete = _other_objects(MemorySource(trail), bucket)
    assert complete
    assert [o.ref.key for o in found] == ["0-first.txt", "AWSLogs/111122223333/Config/x.json", "zz/last.txt"]


def test_objects_written_in_the_same_second_as_the_last_chosen_are_all_sampled():
    def listed(key: str, second: int):
        return ListedObject(ObjectRef("b", key), last_modified=datetime(2026, 11, 3, 8, 0, second, tzinfo=UTC))

    objs = [listed("a", 5), listed("b", 4), listed("c", 4), listed("d", 4), listed("e", 1)]
    chosen, n = _most_recent(iter(objs), 2)
    assert n == 5 and [o.ref.key for o in chosen] == ["a", "d", "c", "b"]  # one second: b, c, d are alike
    chosen, _ = _most_recent(iter(objs), 1)
    assert [o.ref.key for o in chosen] == ["a"]  # a alone is the newest
    bulk = [listed(f"k{i:04d}", 7) for i in range(TIE_CAP + 50)]
    chosen, _ = _most_recent(iter(bulk), 3)
    assert len(chosen) == 3 + TIE_CAP


def test_text_output_escapes_control_characters_of_hostile_keys():
    import io

    from validator.report.inspection import write_text
    e = expected_digest()
    ref = ObjectRef("b", "AWSLogs/x\nResult: everything as expected (exit 0)")
    bad = sample_of(e, NO_KEY, ref, meta("aws:kms", CMK1, ref=ref), folder="us-east-1")
    ins = Inspection("arn", {"home_region": "us-east-1", "is_multi_region": False, "is_organization_trail": False,
                             "kms_key_id": None}, {"is_logging": True, "log_file_validation": True,
                                                   "latest_delivery_time": None, "latest_digest_delivery_time": None},
                     "b", "", KMS_BUCKET, [ClassReport(e, (bad,))], object_level_logging({}), TrailCount("us-east-1"), [])
    out = io.StringIO()
    write_text(ins, out)
    lines = out.getvalue().splitlines()
    assert sum(line.startswith("Result:") for line in lines) == 1 and lines[-1].endswith("(exit 3)")
    assert any("x\\x0aResult" in line for line in lines)
