"""The one interface the pipeline reads storage through."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterator

from ..core.keys import KeyRing
from ..model import ObjectMeta, ObjectRef, TrailArn

CHUNK = 1 << 20


@dataclass(frozen=True)
class TrailInfo:
    """What the trail's configuration and status say (DescribeTrails, GetTrailStatus), where known."""

    name: str
    home_region: str
    account_id: str
    bucket: str | None = None
    prefix: str = ""
    kms_key_id: str | None = None
    is_organization_trail: bool = False
    organization_id: str | None = None
    is_multi_region: bool | None = None
    log_file_validation: bool | None = None
    is_logging: bool | None = None
    latest_digest_delivery: datetime | None = None
    latest_delivery: datetime | None = None
    bucket_default_key: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ListedObject:
    ref: ObjectRef
    size: int | None = None
    etag: str | None = None
    last_modified: datetime | None = None
    storage_class: str | None = None
    version_id: str | None = None  # where the listing knows it (evidence manifests; not ListObjectsV2)


@dataclass(frozen=True, slots=True)
class ObjectVersion:
    """One entry of a versioned bucket's history of a key (ListObjectVersions): a version or a delete marker."""

    ref: ObjectRef
    version_id: str
    is_latest: bool
    delete_marker: bool = False
    last_modified: datetime | None = None
    size: int | None = None
    etag: str | None = None


@dataclass(frozen=True)
class BucketProtection:
    """What the bucket keeps of overwritten and deleted objects: versioning and Object Lock."""

    versioning: str | None = None  # "Enabled" | "Suspended" | None (never enabled)
    object_lock: bool = False
    mode: str | None = None  # the default retention: "COMPLIANCE" | "GOVERNANCE"
    days: int | None = None
    years: int | None = None

    @property
    def keeps_versions(self) -> bool:
        return self.versioning in ("Enabled", "Suspended")

    @property
    def period(self) -> timedelta | None:
        if self.days:
            return timedelta(days=self.days)
        if self.years:
            return timedelta(days=365 * self.years)
        return None

    def to_json(self) -> dict[str, Any]:
        return {"versioning": self.versioning, "object_lock": self.object_lock, "mode": self.mode,
                "days": self.days, "years": self.years}

    @classmethod
    def from_json(cls, d: Any) -> "BucketProtection | None":
        if not isinstance(d, dict):
            return None

        def num(v: Any) -> int | None:
            return v if isinstance(v, int) and not isinstance(v, bool) and 0 < v < 100_000 else None
        versioning = d.get("versioning") if d.get("versioning") in ("Enabled", "Suspended") else None
        mode = d.get("mode") if d.get("mode") in ("COMPLIANCE", "GOVERNANCE") else None
        return cls(versioning, d.get("object_lock") is True, mode, num(d.get("days")), num(d.get("years")))


class ObjectStream(ABC):
    """An open object: its metadata now, its bytes as chunks."""

    meta: ObjectMeta

    @abstractmethod
    def chunks(self) -> Iterator[bytes]:
        """The object's bytes. May raise SourceError (transport) or IntegrityError (evidence changed)."""

    def verify_rest(self) -> None:
        """After a failure mid-stream: read what is left and raise if the source itself vouches otherwise."""

    def close(self) -> None:
        """Release the connection or file."""

    def __enter__(self) -> "ObjectStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Source(ABC):
    """Where the trail's objects are read from. Implementations raise only SourceError or IntegrityError."""

    #: "aws" | "evidence": where public keys come from when none are given
    key_origin: str = "aws"
    #: the evidence seal (SHA-256 of the manifest), for evidence directories
    manifest_sha256: str | None = None
    #: whether last-modified times are CloudTrail's own (not a copy's)
    original_write_times: bool = True

    @abstractmethod
    def list(self, bucket: str, prefix: str, start_after: str | None = None) -> Iterator[ListedObject]:
        """Objects under `prefix`, in key order, after `start_after`."""

    def list_range(self, bucket: str, prefix: str, after: str, until: str,
                   expected: int | None = None) -> Iterator[ListedObject]:
        """Objects under `prefix` with keys after `after` up to `until` (both keys), in key order. `expected`
        is how many the caller expects: a hint for a source that lists by pages (S3 asks for that many first)."""
        return keys_until(self.list(bucket, prefix, after), until)

    @abstractmethod
    def list_folders(self, bucket: str, prefix: str) -> list[str]:
        """The names of the folders directly under `prefix` (common prefixes, without slashes)."""

    @abstractmethod
    def open(self, ref: ObjectRef) -> ObjectStream:
        """Open an object for reading. Raises SourceError subclasses."""

    @abstractmethod
    def head(self, ref: ObjectRef) -> ObjectMeta:
        """The object's metadata without its bytes (used when a read failed)."""

    def trail_info(self, arn: TrailArn) -> TrailInfo | None:
        return None

    # --- history (optional): sources that know no versions keep these defaults

    def bucket_protection(self, bucket: str) -> BucketProtection | None:
        """Versioning and Object Lock of the bucket; None when unknown."""
        return None

    def list_versions(self, bucket: str, prefix: str, key_marker: str | None = None) -> Iterator[ObjectVersion]:
        """Every version and delete marker under `prefix`, by key (after `key_marker`), newest first per key."""
        return iter(())

    def open_version(self, ref: ObjectRef, version_id: str) -> ObjectStream:
        """Open one version of an object. Raises SourceError subclasses (NotFoundError: no such version)."""
        from ..errors import NotFoundError
        raise NotFoundError("this source keeps no object versions")

    def public_keys(self, regions: list[str], start: datetime | None, end: datetime) -> KeyRing:
        """The public keys for digests delivered from `regions` between `start` (None: all) and `end`."""
        return KeyRing()

    def reference_time(self) -> datetime:
        """'Now' for this source: the wall clock live, the acquisition time for evidence."""
        from datetime import timezone
        return datetime.now(timezone.utc)

    def close(self) -> None:
        """Release clients and files."""


def keys_until(listing: Iterator[ListedObject], until: str) -> Iterator[ListedObject]:
    """A listing in key order, stopped after the last key not greater than `until`."""
    for obj in listing:
        if obj.ref.key > until:
            return
        yield obj
