"""Write a synthetic trail into an S3 endpoint (moto, LocalStack) through boto3, as CloudTrail would have.

Each object is put with exactly the encryption and user metadata its
`ObjectMeta` says (digests SSE-S3 with their signature metadata; logs SSE-KMS
under the trail's key, or SSE-S3), so tamper operations that change the
metadata (re-encryption, stripped signatures, SSE-C) reach the endpoint as an
attacker's upload would. The bucket gets the spec's default encryption, and the
trail is created in the endpoint's CloudTrail when it has one.

KMS keys must exist in the endpoint for its S3 to report them faithfully:
`provision_kms_keys` creates them and returns the spec with their ARNs, to be
used before `generate`.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import boto3
from botocore.config import Config

from ..model import ObjectRef, normalize_prefix
from .trail import StoredObject, SyntheticTrail, TrailSpec


@dataclass
class AwsTarget:
    """Where to write: an endpoint (None: real AWS, as configured) and the session to use."""

    endpoint_url: str | None
    region: str = "us-east-1"
    session: boto3.Session | None = None
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def client(self, service: str, region: str | None = None) -> Any:
        region = region or self.region
        key = (service, region)
        with self._lock:  # sessions are not thread-safe
            return self._clients.get(key) or self._make(service, region)

    def _make(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self._clients:
            if self.session is None:
                self.session = boto3.Session()
            session = self.session
            kwargs: dict[str, Any] = {"region_name": region,
                                      "config": Config(retries={"mode": "standard", "max_attempts": 3},
                                                       max_pool_connections=16,
                                                       s3={"addressing_style": "path"} if self.endpoint_url else None)}
            if self.endpoint_url:
                kwargs["endpoint_url"] = self.endpoint_url
            self._clients[key] = session.client(service, **kwargs)
        return self._clients[key]


def create_kms_key(target: AwsTarget, region: str | None = None, description: str = "ctvalidate test key") -> str:
    """A new symmetric KMS key in the endpoint; returns its ARN."""
    return target.client("kms", region).create_key(Description=description)["KeyMetadata"]["Arn"]


def _existing_key(target: AwsTarget, key: str, region: str) -> str | None:
    try:
        return target.client("kms", region).describe_key(KeyId=key)["KeyMetadata"]["Arn"]
    except Exception:
        return None


def provision_kms_keys(spec: TrailSpec, target: AwsTarget) -> TrailSpec:
    """Replace the spec's `kms_key_arn` and `bucket_default_key` (any placeholder) by keys that exist in the endpoint.

    A value that already names a key of the endpoint is kept. Call before `generate`, so that the
    log files' metadata and the digests' trail configuration carry the real ARNs.
    """
    changes: dict[str, str] = {}
    for name in ("kms_key_arn", "bucket_default_key"):
        value = getattr(spec, name)
        if value:
            changes[name] = _existing_key(target, value, spec.home_region) or create_kms_key(
                target, spec.home_region, f"ctvalidate {name} for {spec.trail_name}")
    return replace(spec, **changes) if changes else spec


def provision_organization(spec: TrailSpec, target: AwsTarget) -> TrailSpec:
    """For an organization trail: create (or find) the endpoint's organization and use its id in the spec."""
    if not spec.org_id:
        return spec
    org = target.client("organizations")
    try:
        org_id = org.describe_organization()["Organization"]["Id"]
    except Exception:
        org_id = org.create_organization(FeatureSet="ALL")["Organization"]["Id"]
    return replace(spec, org_id=org_id)


def create_bucket(target: AwsTarget, bucket: str, region: str, default_kms_key: str | None = None,
                  versioning: bool = False, object_lock: dict[str, Any] | None = None) -> None:
    """Create a bucket; `versioning` enables it, `object_lock` ({"Mode", "Days"|"Years"}) sets a default
    retention (and so versioning)."""
    s3 = target.client("s3", region)
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    if object_lock is not None:
        kwargs["ObjectLockEnabledForBucket"] = True
    s3.create_bucket(**kwargs)
    if versioning and object_lock is None:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    if object_lock:
        s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": dict(object_lock)}})
    if default_kms_key:
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": default_kms_key},
            "BucketKeyEnabled": True}]})


def put_object(target: AwsTarget, obj: StoredObject, where: ObjectRef | None = None, region: str | None = None,
               sse_c_key: bytes | None = None) -> ObjectRef:
    """Put one object with the encryption, storage class and user metadata its meta says."""
    meta = obj.meta
    where = where or meta.ref
    kwargs: dict[str, Any] = {"Bucket": where.bucket, "Key": where.key, "Body": obj.body,
                              "Metadata": dict(meta.metadata)}
    if meta.sse_customer_algorithm:
        kwargs["SSECustomerAlgorithm"] = meta.sse_customer_algorithm
        kwargs["SSECustomerKey"] = sse_c_key or os.urandom(32)
    elif meta.sse:
        kwargs["ServerSideEncryption"] = meta.sse
        if meta.sse.startswith("aws:kms") and meta.kms_key_id:
            kwargs["SSEKMSKeyId"] = meta.kms_key_id
    if meta.storage_class and meta.storage_class != "STANDARD":
        kwargs["StorageClass"] = meta.storage_class
    target.client("s3", region).put_object(**kwargs)
    return where


def relocate(ref: ObjectRef, spec: TrailSpec, bucket: str | None, prefix: str | None) -> ObjectRef:
    """Where `ref` lies in a copy at `bucket`/`prefix` (keys below the spec's prefix move below the new one)."""
    if bucket is None and prefix is None:
        return ref
    old = normalize_prefix(spec.prefix)
    key = ref.key
    if prefix is not None and key.startswith(old):
        key = normalize_prefix(prefix) + key[len(old):]
    return ObjectRef(bucket or ref.bucket, key)


def write_trail(trail: SyntheticTrail, target: AwsTarget, *, bucket: str | None = None, prefix: str | None = None,
                create: bool = True, create_cloudtrail: bool = True, workers: int = 8, versioning: bool = False,
                object_lock: dict[str, Any] | None = None) -> list[ObjectRef]:
    """Put every object of `trail` into the endpoint; returns where they went.

    `bucket`/`prefix` write a copy elsewhere (the keys and the digests' contents still name the original).
    With `create`, the bucket is made (in the trail's home region, with the spec's default encryption); with
    `create_cloudtrail`, the trail is created in the endpoint's CloudTrail, and started (and stopped again
    when the spec's logging has ended).
    """
    spec = trail.spec
    dest_bucket = bucket or spec.bucket
    region = spec.home_region
    if create:
        create_bucket(target, dest_bucket, region, spec.bucket_default_key, versioning=versioning,
                      object_lock=object_lock)
    objects = list(trail.iter_objects())
    with ThreadPoolExecutor(max_workers=workers) as pool:
        written = list(pool.map(lambda o: put_object(target, o, relocate(o.ref, spec, bucket, prefix), region),
                                objects))
    if create_cloudtrail and bucket is None:
        create_trail(trail, target)
    return written


def create_trail(trail: SyntheticTrail, target: AwsTarget) -> None:
    spec = trail.spec
    ct = target.client("cloudtrail", spec.home_region)
    kwargs: dict[str, Any] = {"Name": spec.trail_name, "S3BucketName": spec.bucket,
                              "IsMultiRegionTrail": len(spec.regions) > 1, "EnableLogFileValidation": True,
                              "IsOrganizationTrail": spec.org_id is not None}
    if spec.prefix.strip("/"):
        kwargs["S3KeyPrefix"] = spec.prefix.strip("/")
    if spec.kms_key_arn:
        kwargs["KmsKeyId"] = spec.kms_key_arn
    ct.create_trail(**kwargs)
    ct.start_logging(Name=spec.trail_name)
    if not trail.trail.is_logging:
        ct.stop_logging(Name=spec.trail_name)


def trail_status(trail: SyntheticTrail) -> dict[str, Any]:
    """What GetTrailStatus would answer for the synthetic trail (the fields an emulator lacks)."""
    t = trail.trail
    return {"IsLogging": bool(t.is_logging),
            "LatestDigestDeliveryTime": t.latest_digest_delivery.timestamp() if t.latest_digest_delivery else None,
            "LatestDeliveryTime": t.latest_delivery.timestamp() if t.latest_delivery else None}


__all__ = ["AwsTarget", "create_bucket", "create_kms_key", "create_trail", "provision_kms_keys",
           "provision_organization", "put_object", "relocate", "trail_status", "write_trail"]
