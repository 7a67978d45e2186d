"""The benchmarks' in-memory S3 (botocore event hooks, no server) serves a trail faithfully.

A benchmark that measured error paths would measure nothing: over the hooked S3, ctvalidate's
S3 source must give exactly the records it gives on the evidence directory the store was loaded
from, on a clean and on a tampered trail, and listings must page as S3 pages them.
"""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest

from benchmarks.memstore import from_evidence
from validator.model import TrailArn
from validator.pipeline import Validation
from validator.policy import RunConfig
from validator.sources.evidence import EvidenceSource
from validator.sources.s3 import S3Source
from validator.synth import generate
from validator.synth.tamper import apply_named

ENDPOINT = "http://127.0.0.1:9"  # never contacted: the hooks answer first


def _session(mem):
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    mem.install(session.events)
    return session


def _records(source, trail) -> list[dict]:
    cfg = RunConfig(trail=TrailArn.parse(trail.arn), start=trail.spec.start,
                    end=trail.spec.start + timedelta(hours=trail.spec.hours + 1), workers=4)
    return [r.to_json() for r in Validation(source, cfg, None, None).records()]


@pytest.mark.parametrize("tampers", [(), ("modify-log:us-east-1:1", "delete-digest:eu-west-1:2",
                                          "inject-log:us-east-1:3", "strip-metadata:us-east-1:4")])
def test_hooked_s3_gives_the_records_of_the_evidence(tmp_path, tampers):
    trail = generate(hours=6, logs_per_hour=(2, 3))
    for t in tampers:
        apply_named(trail, t)
    path = tmp_path / "ev"
    trail.write_evidence(str(path))
    mem = from_evidence(str(path), latency=0)
    live = _records(S3Source(_session(mem), ENDPOINT, "us-east-1", 4), trail)
    offline = _records(EvidenceSource(str(path)), trail)
    assert live == offline
    assert len(live) > 20 and mem.requests > len(live)
    assert any(r["status"] != "valid" for r in live) == bool(tampers)


def test_listings_page_and_delimit_like_s3(tmp_path):
    trail = generate(hours=3)
    path = tmp_path / "ev"
    trail.write_evidence(str(path))
    mem = from_evidence(str(path), latency=0)
    s3 = _session(mem).client("s3", endpoint_url=ENDPOINT)
    bucket = trail.spec.bucket
    keys = sorted(o.ref.key for o in trail.objects.values())
    v2 = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={
        "PageSize": 7}) for o in page.get("Contents", [])]
    pages = s3.get_paginator("list_objects").paginate(Bucket=bucket, Prefix="AWSLogs/",
                                                      PaginationConfig={"PageSize": 5})
    v1 = [o["Key"] for page in pages for o in page.get("Contents", [])]
    assert v2 == v1 == keys
    top = s3.list_objects_v2(Bucket=bucket, Prefix=f"AWSLogs/{trail.spec.trail_account}/", Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == [f"AWSLogs/{trail.spec.trail_account}/CloudTrail-Digest/",
                                                            f"AWSLogs/{trail.spec.trail_account}/CloudTrail/"]
    obj = trail.digests()[0]
    got = s3.get_object(Bucket=bucket, Key=obj.ref.key)
    assert got["Body"].read() == obj.body and got["Metadata"] == obj.meta.metadata
    assert got["ServerSideEncryption"] == "AES256"
