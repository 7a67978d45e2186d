"""Which bodies the S3 source can check against S3's own word (pure rules, no server)."""

from __future__ import annotations

import pytest

from validator.model import ObjectMeta, ObjectRef
from validator.sources.s3 import _env_float, md5_etag

REF = ObjectRef("b", "k")
MD5 = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("meta,expected", [
    (ObjectMeta(REF, etag=MD5, sse="AES256"), MD5),  # SSE-S3: the ETag is the MD5 of the bytes
    (ObjectMeta(REF, etag=MD5.upper(), sse=None), MD5),  # unencrypted
    (ObjectMeta(REF, etag=MD5, sse="aws:kms", kms_key_id="arn"), None),  # SSE-KMS: not an MD5
    (ObjectMeta(REF, etag=MD5, sse="aws:kms:dsse"), None),
    (ObjectMeta(REF, etag=MD5, sse_customer_algorithm="AES256"), None),  # SSE-C
    (ObjectMeta(REF, etag=MD5 + "-3", sse="AES256"), None),  # multipart
    (ObjectMeta(REF, etag=None, sse="AES256"), None),
    (ObjectMeta(REF, etag="not-hex-at-all-not-hex-at-all-xx", sse="AES256"), None),
])
def test_md5_is_checked_only_where_the_etag_is_one(meta, expected):
    assert md5_etag(meta) == expected


def test_timeouts_from_the_environment_are_bounded(monkeypatch):
    monkeypatch.setenv("CTV_READ_TIMEOUT", "2.5")
    assert _env_float("CTV_READ_TIMEOUT", 60) == 2.5
    for bad in ("0", "-1", "nan", "inf", "soon", ""):
        monkeypatch.setenv("CTV_READ_TIMEOUT", bad)
        assert _env_float("CTV_READ_TIMEOUT", 60) == 60
