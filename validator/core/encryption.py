"""Encryption provenance: how an object is encrypted tells whether CloudTrail wrote it.

CloudTrail writes digests with SSE-S3 always, and log files with SSE-KMS under
the trail's key (SSE-S3 when the trail has none), whatever the bucket's default
encryption says; anything else put into the bucket gets the bucket's default.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model import ObjectMeta
from ..results import INVALID, WARNING, Verdict

SSE_S3 = "AES256"
SSE_KMS = ("aws:kms", "aws:kms:dsse")


def key_id(arn_or_id: str | None) -> str | None:
    """The bare key id of a KMS key ARN (`arn:...:key/ID` -> `ID`); aliases stay as they are."""
    if not arn_or_id:
        return None
    return arn_or_id.rsplit("key/", 1)[-1] if ":key/" in arn_or_id else arn_or_id


@dataclass(frozen=True)
class EncryptionPolicy:
    """What CloudTrail would have used. `known` is False when the trail's configuration is unknown."""

    known: bool = False
    trail_kms_key: str | None = None  # ARN, or None for SSE-S3
    extra_log_keys: frozenset[str] = field(default_factory=frozenset)  # further keys the user accepts
    bucket_default_key: str | None = None  # for messages

    def expected_log_keys(self) -> set[str]:
        keys = {key_id(k) for k in self.extra_log_keys}
        if self.trail_kms_key:
            keys.add(key_id(self.trail_kms_key))
        return {k for k in keys if k}

    def describe_expected_log(self) -> str:
        if self.trail_kms_key:
            return f"SSE-KMS with the trail's key {self.trail_kms_key}"
        return "SSE-S3 (the trail has no KMS key)"


def digest_encryption(meta: ObjectMeta) -> Verdict | None:
    """A digest not stored with SSE-S3 was not written by CloudTrail. None when unrecorded or fine."""
    if meta.sse is None and meta.sse_customer_algorithm is None:
        return None
    if meta.sse == SSE_S3 and not meta.sse_customer_algorithm:
        return None
    return Verdict(WARNING, "not_sse_s3", f"stored with {describe(meta)}, but CloudTrail writes digests with SSE-S3")


def log_encryption(meta: ObjectMeta, policy: EncryptionPolicy) -> Verdict | None:
    """A log under encryption CloudTrail would not have used for this trail: a warning naming both keys."""
    if not policy.known or (meta.sse is None and not meta.sse_customer_algorithm):
        return None
    kms_ok = meta.sse in SSE_KMS and key_id(meta.kms_key_id) in policy.expected_log_keys()
    sse_s3_ok = meta.sse == SSE_S3 and not meta.sse_customer_algorithm and policy.trail_kms_key is None
    if kms_ok or sse_s3_ok:
        return None
    bucket_note = ""
    if policy.bucket_default_key and key_id(meta.kms_key_id) == key_id(policy.bucket_default_key):
        bucket_note = " (the bucket's default key)"
    return Verdict(WARNING, "unexpected_encryption",
                   f"stored with {describe(meta)}{bucket_note}; CloudTrail would have used "
                   f"{policy.describe_expected_log()}")


def unreadable_is_foreign(meta: ObjectMeta, policy: EncryptionPolicy, is_digest: bool) -> Verdict | None:
    """An object that cannot be read, under encryption CloudTrail never uses for it, was overwritten."""
    if meta.sse_customer_algorithm:
        return Verdict(INVALID, "foreign_encryption",
                       "stored with SSE-C (a customer-provided key), which CloudTrail never uses: overwritten")
    if meta.sse in SSE_KMS:
        if is_digest:
            return Verdict(INVALID, "foreign_encryption",
                           f"stored with SSE-KMS key {meta.kms_key_id}; CloudTrail writes digests with SSE-S3: overwritten")
        if policy.known and key_id(meta.kms_key_id) not in policy.expected_log_keys():
            return Verdict(INVALID, "foreign_encryption",
                           f"stored with SSE-KMS key {meta.kms_key_id}, not the trail's "
                           f"({policy.trail_kms_key or 'none: SSE-S3'}): overwritten")
    return None


def describe(meta: ObjectMeta) -> str:
    if meta.sse_customer_algorithm:
        return f"SSE-C ({meta.sse_customer_algorithm})"
    if meta.sse in SSE_KMS:
        return f"SSE-KMS key {meta.kms_key_id}"
    if meta.sse == SSE_S3:
        return "SSE-S3"
    return f"encryption {meta.sse!r}"
