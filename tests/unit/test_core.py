"""The pure core: keys, signed string, signatures, streaming gunzip + SHA-256, parsing."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import resource
from pathlib import Path

import pytest

from validator.core.hashing import GunzipSha256, gunzip_sha256
from validator.core.keys import KeyRing, fingerprint_of, parse_key_list, parse_public_key
from validator.core.signing import string_to_sign, verify_signature
from validator.core.verify import check_digest
from validator.errors import FormatError, TrailingDataError
from validator.model import ObjectRef, parse_digest, parse_key, parse_time
from validator.synth import generate
from validator.synth import tamper as T

AWS_KEYS = Path(__file__).parent.parent / "data" / "aws-published-public-keys.json"


def test_aws_published_keys_parse_with_their_fingerprints():
    doc = json.loads(AWS_KEYS.read_text())
    keys = parse_key_list(doc)
    assert [k.fingerprint for k in keys] == [e["Fingerprint"] for e in doc["PublicKeyList"]]
    assert all(k.rsa.key_size == 2048 for k in keys)
    # the fourth carries epoch-second validity times, as older CLIs printed them
    assert keys[3].valid_from is not None and keys[3].valid_from.year == 2016


def test_subject_public_key_info_and_pkcs1_are_both_accepted():
    doc = json.loads(AWS_KEYS.read_text())
    spki = base64.b64decode(doc["PublicKeyList"][2]["Value"])
    assert spki[:4] == bytes.fromhex("30820122")  # SubjectPublicKeyInfo SEQUENCE
    assert parse_public_key(doc["PublicKeyList"][2]).fingerprint == fingerprint_of(spki)


def test_a_key_file_that_lies_about_a_fingerprint_is_refused():
    entry = dict(json.loads(AWS_KEYS.read_text())["PublicKeyList"][0])
    entry["Fingerprint"] = "00" * 16
    with pytest.raises(FormatError, match="lies"):
        parse_public_key(entry)


def test_iso_validity_times_are_accepted():
    entry = dict(json.loads(AWS_KEYS.read_text())["PublicKeyList"][1])
    entry["ValidityStartTime"] = "2024-01-02T03:04:05Z"
    entry["ValidityEndTime"] = "2024-02-01T03:04:05+00:00"
    k = parse_public_key(entry)
    assert k.valid_from.isoformat() == "2024-01-02T03:04:05+00:00"


@pytest.mark.parametrize("bad", [{"Value": "!!!", "Fingerprint": "x"}, {"Fingerprint": "x"}, "text",
                                 {"Value": base64.b64encode(b"not a key").decode(),
                                  "Fingerprint": hashlib.md5(b"not a key").hexdigest()}])
def test_malformed_key_entries_raise_format_error(bad):
    with pytest.raises(FormatError):
        parse_public_key(bad)


def _trail_digest():
    trail = generate(hours=3, regions=("us-east-1",))
    d = trail.digests()[1]
    ring = KeyRing(parse_key_list(trail.public_keys_doc()))
    return trail, d, ring


def test_signed_string_is_the_documented_one():
    trail, d, _ = _trail_digest()
    raw = trail.raw_digests[d.ref]
    digest = parse_digest(raw)
    s = string_to_sign(digest, hashlib.sha256(raw).hexdigest()).decode()
    doc = json.loads(raw)
    assert s == (f"{doc['digestEndTime']}\n{doc['digestS3Bucket']}/{doc['digestS3Object']}\n"
                 f"{hashlib.sha256(raw).hexdigest()}\n{doc['previousDigestSignature']}")


def test_first_digest_signs_literal_null():
    trail, _, ring = _trail_digest()
    first = trail.digests()[0]
    raw = trail.raw_digests[first.ref]
    digest = parse_digest(raw)
    assert digest.previous_signature is None
    assert string_to_sign(digest, "ab").endswith(b"\nab\nnull")
    key = ring.get(digest.fingerprint)
    assert verify_signature(key, string_to_sign(digest, hashlib.sha256(raw).hexdigest()),
                            first.meta.metadata["signature"])


def test_check_digest_valid_and_each_failure():
    trail, d, ring = _trail_digest()
    ok = check_digest(d.body, d.meta.metadata, d.ref, d.ref, ring)
    assert ok.verdict.status == "valid" and ok.sha256 == hashlib.sha256(trail.raw_digests[d.ref]).hexdigest()
    other = ObjectRef("elsewhere", d.ref.key)
    assert check_digest(d.body, d.meta.metadata, other, other, ring).verdict.reason == "moved"
    assert check_digest(d.body, {}, d.ref, d.ref, ring).verdict.reason == "no_signature"
    assert check_digest(d.body, d.meta.metadata, d.ref, d.ref, KeyRing()).verdict.reason == "unknown_public_key"
    flipped = dict(d.meta.metadata, signature=("0" if d.meta.metadata["signature"][0] != "0" else "1")
                   + d.meta.metadata["signature"][1:])
    assert check_digest(d.body, flipped, d.ref, d.ref, ring).verdict.reason == "signature_mismatch"
    assert check_digest(b"junk", d.meta.metadata, d.ref, d.ref, ring).verdict.reason == "invalid_format"
    not_hex = dict(d.meta.metadata, signature="zz")
    assert check_digest(d.body, not_hex, d.ref, d.ref, ring).verdict.reason == "signature_mismatch"


@pytest.mark.parametrize("doc,why", [
    ({"awsAccountId": "1"}, "required fields missing"),
    (None, "not a JSON object"),
])
def test_parse_digest_rejects_malformed(doc, why):
    with pytest.raises(FormatError, match=why):
        parse_digest(json.dumps(doc).encode())


def test_parse_digest_rejects_wrong_types():
    trail, d, _ = _trail_digest()
    doc = json.loads(trail.raw_digests[d.ref])
    for field, value in [("digestEndTime", 12), ("logFiles", {}), ("digestS3Object", ["x"]),
                         ("digestStartTime", "yesterday"), ("awsAccountId", "12")]:
        bad = dict(doc, **{field: value})
        with pytest.raises(FormatError):
            parse_digest(json.dumps(bad).encode())


def test_deeply_nested_json_is_a_format_error_not_a_crash():
    with pytest.raises(FormatError):
        parse_digest(b"[" * 100000 + b"]" * 100000)


def test_gunzip_sha256_of_uncompressed_bytes():
    data = os.urandom(3 << 20)
    body = gzip.compress(data)
    h, n = gunzip_sha256([body[i:i + 1000] for i in range(0, len(body), 1000)])
    assert h == hashlib.sha256(data).hexdigest() and n == len(data)


def test_gunzip_rejects_trailing_and_truncated_and_empty():
    body = gzip.compress(b"hello")
    with pytest.raises(TrailingDataError):
        gunzip_sha256([body + b"junk"])
    with pytest.raises(TrailingDataError):
        gunzip_sha256([body, gzip.compress(b"second member")])
    with pytest.raises(FormatError, match="truncated"):
        gunzip_sha256([body[:-4]])
    with pytest.raises(FormatError):
        gunzip_sha256([b""])
    with pytest.raises(FormatError):
        gunzip_sha256([b"plain text, not gzip"])


def test_gzip_bomb_is_hashed_in_bounded_memory():
    """256 MiB of zeros from a 256 KiB object: memory stays flat (1 MiB output steps)."""
    import zlib
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * (1 << 20)
    bomb = b"".join(c.compress(block) for _ in range(256)) + c.flush()
    expected = hashlib.sha256()
    for _ in range(256):
        expected.update(block)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    h = GunzipSha256()
    for i in range(0, len(bomb), 65536):
        h.update(bomb[i:i + 65536])
    assert h.finish() == expected.hexdigest()
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 64


def test_output_cap_stops_inflation():
    h = GunzipSha256(max_output=1000)
    with pytest.raises(FormatError, match="more than 1000"):
        h.update(gzip.compress(b"x" * 5000))
    assert h.too_large


@pytest.mark.parametrize("key,ok", [
    ("AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/02/111122223333_CloudTrail_us-east-1_20261102T0017Z_abc123.json.gz", True),
    ("p/AWSLogs/o-abcdefghij/111122223333/CloudTrail-Digest/eu-west-1/2026/11/02/111122223333_CloudTrail-Digest_eu-west-1_my_trail.v2_us-east-1_20261102T010008Z_backfill.json.gz", True),
    ("AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/03/111122223333_CloudTrail_us-east-1_20261102T0017Z_abc.json.gz", False),
    ("AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/02/999999999999_CloudTrail_us-east-1_20261102T0017Z_abc.json.gz", False),
    ("AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/02/../../x.json.gz", False),
    ("AWSLogs/111122223333/CloudTrail/us-east-1/2026/13/45/111122223333_CloudTrail_us-east-1_20261345T0017Z_abc.json.gz", False),
])
def test_key_names(key, ok):
    name = parse_key(key)
    assert (name is not None) == ok
    if name and name.is_digest:
        assert name.trail_name == "my_trail.v2" and name.home_region == "us-east-1" and name.backfill
        assert name.org_id == "o-abcdefghij" and name.prefix == "p/"


def test_parse_time_forms():
    assert parse_time("2026-11-02").isoformat() == "2026-11-02T00:00:00+00:00"
    assert parse_time("2026-11-02T01:02:03+02:00").isoformat() == "2026-11-01T23:02:03+00:00"
    with pytest.raises(FormatError):
        parse_time("99999-01-01")


def test_resigned_digest_with_test_key_still_verifies_in_the_core():
    trail, d, ring = _trail_digest()
    T.resign(trail, d.ref, lambda doc: doc.update(logFiles=[]), cascade=False)
    new = trail.objects[d.ref]
    assert check_digest(new.body, new.meta.metadata, d.ref, d.ref, ring).verdict.status == "valid"
