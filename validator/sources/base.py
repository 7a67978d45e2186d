"""The one interface the pipeline reads storage through."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
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

    def public_keys(self, regions: list[str], start: datetime | None, end: datetime) -> KeyRing:
        """The public keys for digests delivered from `regions` between `start` (None: all) and `end`."""
        return KeyRing()

    def reference_time(self) -> datetime:
        """'Now' for this source: the wall clock live, the acquisition time for evidence."""
        from datetime import timezone
        return datetime.now(timezone.utc)

    def close(self) -> None:
        """Release clients and files."""
