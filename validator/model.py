"""Frozen value types and parsers of untrusted bytes. No I/O here.

Everything that comes from S3 or an evidence directory is hostile: the parsers
check types and sizes and raise :class:`~validator.errors.FormatError` rather
than trusting a field.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

import orjson

from .errors import FormatError

UTC = timezone.utc

# --- object locations -------------------------------------------------------


@dataclass(frozen=True, order=True, slots=True)
class ObjectRef:
    """A location in S3: bucket and key (a version id where one is pinned)."""

    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    """What S3 says about an object besides its bytes (from GET, HEAD or a manifest)."""

    ref: ObjectRef
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    last_modified: datetime | None = None
    storage_class: str | None = None
    sse: str | None = None  # "AES256", "aws:kms", "aws:kms:dsse", or None
    kms_key_id: str | None = None
    sse_customer_algorithm: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)  # x-amz-meta-*, lower-case names
    lock_mode: str | None = None  # Object Lock retention of this version: "COMPLIANCE" | "GOVERNANCE"
    lock_until: datetime | None = None  # its retain-until date
    legal_hold: str | None = None  # "ON" | "OFF"


@dataclass(frozen=True)
class BucketEncryption:
    """A bucket's default encryption: `algorithm` None when none is configured; `error` when it could not be read."""

    algorithm: str | None = None  # "AES256", "aws:kms", "aws:kms:dsse"
    configured_key: str | None = None  # KMSMasterKeyID as configured (id, alias or ARN)
    kms_key: str | None = None  # the same resolved to an ARN where DescribeKey allowed it
    error: str | None = None


# --- times -------------------------------------------------------------------

MIN_YEAR, MAX_YEAR = 1970, 2200  # absurd times are refused before any arithmetic can overflow

_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?$"
)


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 time (CloudTrail's and the CLI's forms); naive means UTC."""
    if not isinstance(text, str) or len(text) > 40:
        raise FormatError(f"not a time: {text!r:.60}")
    t = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", t):
        t += "T00:00:00"
    m = _ISO_RE.match(t)
    if not m:
        raise FormatError(f"not an ISO 8601 time: {text!r:.60}")
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00") if t.endswith("Z") else t)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        dt = dt.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise FormatError(f"not a valid time: {text!r:.60}") from exc
    if not MIN_YEAR <= dt.year <= MAX_YEAR:
        raise FormatError(f"time out of range ({MIN_YEAR}-{MAX_YEAR}): {text!r:.60}")
    return dt


def format_time(dt: datetime | None) -> str | None:
    """ISO 8601 UTC with a trailing Z, to the second (the contract's form)."""
    if dt is None:
        return None
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_duration(text: str) -> timedelta:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text or "")
    if not m:
        raise ValueError(f"not a duration (use a number with s, m, h or d): {text!r}")
    n = float(m.group(1))
    return timedelta(seconds=n * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)])


# --- key names ------------------------------------------------------------------

REGION = r"[a-z]{2}(?:-[a-z]+)+-\d+"
ACCOUNT = r"\d{12}"
ORG = r"o-[a-z0-9]{10,32}"

_DIGEST_NAME_RE = re.compile(
    rf"^(?P<account>{ACCOUNT})_CloudTrail-Digest_(?P<region>{REGION})_(?P<trail>[A-Za-z0-9._\-]+?)_"
    rf"(?P<home>{REGION})_(?P<ts>\d{{8}}T\d{{6}}Z)(?P<backfill>_backfill)?\.json\.gz$"
)
_LOG_NAME_RE = re.compile(
    rf"^(?P<account>{ACCOUNT})_CloudTrail_(?P<region>{REGION})_(?P<ts>\d{{8}}T\d{{4}}Z)_(?P<unique>[A-Za-z0-9]+)\.json\.gz$"
)
_FOLDER_RE = re.compile(
    rf"^(?P<prefix>.*?)AWSLogs/(?:(?P<org>{ORG})/)?(?P<account>{ACCOUNT})/(?P<kind>CloudTrail|CloudTrail-Digest)/"
    rf"(?P<region>{REGION})/(?P<y>\d{{4}})/(?P<m>\d{{2}})/(?P<d>\d{{2}})/(?P<name>[^/]+)$"
)


@dataclass(frozen=True, slots=True)
class KeyName:
    """What a CloudTrail key says of itself. Names are claims, not facts: never trusted alone."""

    prefix: str  # "" or "PREFIX/"
    org_id: str | None
    account_id: str
    region: str
    is_digest: bool
    time: datetime  # digest: its end time; log: its delivery minute
    trail_name: str | None = None  # digests only
    home_region: str | None = None  # digests only
    backfill: bool = False


def parse_key(key: str) -> KeyName | None:
    """Parse a CloudTrail log or digest key; None when it is not one (a stray object)."""
    if len(key) > 1024:
        return None
    m = _FOLDER_RE.match(key)
    if not m:
        return None
    name = m.group("name")
    if m.group("kind") == "CloudTrail-Digest":
        n = _DIGEST_NAME_RE.match(name)
        if not n:
            return None
        fmt = "%Y%m%dT%H%M%SZ"
    else:
        n = _LOG_NAME_RE.match(name)
        if not n:
            return None
        fmt = "%Y%m%dT%H%MZ"
    if n.group("account") != m.group("account") or n.group("region") != m.group("region"):
        return None
    try:
        t = datetime.strptime(n.group("ts"), fmt).replace(tzinfo=UTC)
    except ValueError:
        return None
    if (t.year, t.month, t.day) != (int(m.group("y")), int(m.group("m")), int(m.group("d"))):
        return None  # date folder contradicts the name
    is_digest = m.group("kind") == "CloudTrail-Digest"
    return KeyName(
        prefix=m.group("prefix"),
        org_id=m.group("org"),
        account_id=m.group("account"),
        region=m.group("region"),
        is_digest=is_digest,
        time=t,
        trail_name=n.group("trail") if is_digest else None,
        home_region=n.group("home") if is_digest else None,
        backfill=bool(is_digest and n.group("backfill")),
    )


def account_root(prefix: str, org_id: str | None, account_id: str) -> str:
    """`[PREFIX/]AWSLogs/[ORG/]ACCOUNT/`."""
    org = f"{org_id}/" if org_id else ""
    return f"{prefix}AWSLogs/{org}{account_id}/"


def digest_key(prefix: str, org_id: str | None, account_id: str, region: str, trail: str,
               home_region: str, end_time: datetime, backfill: bool = False) -> str:
    ts = end_time.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    day = end_time.astimezone(UTC).strftime("%Y/%m/%d")
    suffix = "_backfill" if backfill else ""
    return (f"{account_root(prefix, org_id, account_id)}CloudTrail-Digest/{region}/{day}/"
            f"{account_id}_CloudTrail-Digest_{region}_{trail}_{home_region}_{ts}{suffix}.json.gz")


def log_key(prefix: str, org_id: str | None, account_id: str, region: str, delivered: datetime,
            unique: str) -> str:
    ts = delivered.astimezone(UTC).strftime("%Y%m%dT%H%MZ")
    day = delivered.astimezone(UTC).strftime("%Y/%m/%d")
    return (f"{account_root(prefix, org_id, account_id)}CloudTrail/{region}/{day}/"
            f"{account_id}_CloudTrail_{region}_{ts}_{unique}.json.gz")


def normalize_prefix(prefix: str | None) -> str:
    """The trail's S3 key prefix as it stands before `AWSLogs/` ("" or ending in "/")."""
    p = (prefix or "").strip("/")
    return f"{p}/" if p else ""


# --- trail ARN ------------------------------------------------------------------

_ARN_RE = re.compile(r"^arn:(aws[a-z\-]*):cloudtrail:([a-z0-9\-]+):(\d{12}):trail/([A-Za-z0-9._\-]{1,128})$")


@dataclass(frozen=True, slots=True)
class TrailArn:
    partition: str
    home_region: str
    account_id: str
    name: str

    @classmethod
    def parse(cls, arn: str) -> "TrailArn":
        m = _ARN_RE.match(arn or "")
        if not m:
            raise ValueError(
                f"not a trail ARN (arn:<partition>:cloudtrail:<region>:<account>:trail/<name>): {arn!r}")
        return cls(*m.groups())

    def __str__(self) -> str:
        return f"arn:{self.partition}:cloudtrail:{self.home_region}:{self.account_id}:trail/{self.name}"


# --- digests ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogFileRef:
    """One entry of a digest's `logFiles`."""

    ref: ObjectRef
    hash_value: str  # lowercase hex SHA-256 of the uncompressed bytes
    hash_algorithm: str
    newest_event_time: str | None = None
    oldest_event_time: str | None = None


@dataclass(frozen=True, slots=True)
class Digest:
    """A parsed digest file. Fields are as the file states them, nothing verified yet."""

    account_id: str
    start_time: datetime
    end_time: datetime
    end_time_text: str  # exactly as in the file: it is part of the signed string
    location: ObjectRef  # digestS3Bucket / digestS3Object
    fingerprint: str
    signature_algorithm: str
    previous: ObjectRef | None
    previous_hash: str | None
    previous_hash_algorithm: str | None
    previous_signature: str | None
    log_files: tuple[LogFileRef, ...]
    newest_event_time: str | None = None
    oldest_event_time: str | None = None

    @property
    def is_chain_start(self) -> bool:
        return self.previous is None

    def compacted(self, previous_signature: str | None, location: ObjectRef) -> "Digest":
        """The fields chain linking and the records use (the log list taken out: the pipeline keeps it on
        disk), with `previous_signature` in place of the 512-character hex one, `location` (an equal object
        the caller holds anyway) and the strings every digest of a chain repeats shared."""
        prev = self.previous
        return replace(self, log_files=(), end_time_text="", signature_algorithm="", location=location,
                       account_id=sys.intern(self.account_id), fingerprint=sys.intern(self.fingerprint),
                       previous=ObjectRef(sys.intern(prev.bucket), prev.key) if prev is not None else None,
                       previous_signature=previous_signature, previous_hash_algorithm=None,
                       newest_event_time=None, oldest_event_time=None)


REQUIRED_DIGEST_FIELDS = (
    "awsAccountId", "digestStartTime", "digestEndTime", "digestS3Bucket", "digestS3Object",
    "digestPublicKeyFingerprint", "digestSignatureAlgorithm", "previousDigestSignature", "logFiles",
)

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX = re.compile(r"^[0-9a-fA-F]*$")


def _str_field(obj: Mapping[str, Any], name: str, *, nullable: bool = False, limit: int = 2048) -> str | None:
    value = obj.get(name)
    if value is None:
        if nullable:
            return None
        raise FormatError(f"field {name} is missing or null")
    if not isinstance(value, str):
        raise FormatError(f"field {name} is not a string")
    if len(value) > limit:
        raise FormatError(f"field {name} is too long")
    return value


def parse_digest(raw: bytes) -> Digest:
    """Parse uncompressed digest bytes. Raises FormatError on anything malformed."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FormatError(f"not JSON: {str(exc)[:120]}") from None
    if not isinstance(obj, dict):
        raise FormatError("digest is not a JSON object")
    missing = [f for f in REQUIRED_DIGEST_FIELDS if f not in obj]
    if missing:
        raise FormatError(f"required fields missing: {', '.join(missing)}")
    end_text = _str_field(obj, "digestEndTime", limit=40)
    start = parse_time(_str_field(obj, "digestStartTime", limit=40))
    end = parse_time(end_text)
    if start > end:
        raise FormatError("digestStartTime is after digestEndTime")
    account = _str_field(obj, "awsAccountId", limit=12)
    if not re.fullmatch(ACCOUNT, account):
        raise FormatError("awsAccountId is not a 12-digit account id")
    location = ObjectRef(_str_field(obj, "digestS3Bucket", limit=255),
                         _str_field(obj, "digestS3Object", limit=1024))
    prev_bucket = _str_field(obj, "previousDigestS3Bucket", nullable=True, limit=255)
    prev_key = _str_field(obj, "previousDigestS3Object", nullable=True, limit=1024)
    prev_sig = _str_field(obj, "previousDigestSignature", nullable=True, limit=4096)
    prev_hash = _str_field(obj, "previousDigestHashValue", nullable=True, limit=128)
    if (prev_bucket is None) != (prev_key is None):
        raise FormatError("previousDigestS3Bucket and previousDigestS3Object must both be set or both null")
    if prev_sig is not None and not _HEX.match(prev_sig):
        raise FormatError("previousDigestSignature is not hex")
    logs_raw = obj.get("logFiles")
    if not isinstance(logs_raw, list):
        raise FormatError("logFiles is not a list")
    logs = []
    for i, entry in enumerate(logs_raw):
        if not isinstance(entry, dict):
            raise FormatError(f"logFiles[{i}] is not an object")
        try:
            h = _str_field(entry, "hashValue", limit=128)
            logs.append(LogFileRef(
                ref=ObjectRef(_str_field(entry, "s3Bucket", limit=255), _str_field(entry, "s3Object", limit=1024)),
                hash_value=h.lower(),
                hash_algorithm=_str_field(entry, "hashAlgorithm", nullable=True, limit=32) or "SHA-256",
                newest_event_time=_str_field(entry, "newestEventTime", nullable=True, limit=40),
                oldest_event_time=_str_field(entry, "oldestEventTime", nullable=True, limit=40),
            ))
        except FormatError as exc:
            raise FormatError(f"logFiles[{i}]: {exc}") from None
    return Digest(
        account_id=account,
        start_time=start,
        end_time=end,
        end_time_text=end_text,
        location=location,
        fingerprint=_str_field(obj, "digestPublicKeyFingerprint", limit=128),
        signature_algorithm=_str_field(obj, "digestSignatureAlgorithm", limit=64),
        previous=ObjectRef(prev_bucket, prev_key) if prev_bucket is not None else None,
        previous_hash=prev_hash.lower() if prev_hash else None,
        previous_hash_algorithm=_str_field(obj, "previousDigestHashAlgorithm", nullable=True, limit=32),
        previous_signature=prev_sig,  # as written: it is part of the signed string
        log_files=tuple(logs),
        newest_event_time=_str_field(obj, "newestEventTime", nullable=True, limit=40),
        oldest_event_time=_str_field(obj, "oldestEventTime", nullable=True, limit=40),
    )


def is_sha256_hex(text: str) -> bool:
    return bool(_HEX64.match(text))
