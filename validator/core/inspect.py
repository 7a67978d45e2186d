"""What `inspect` concludes from a trail's configuration and a sample of its objects. No I/O here.

The relationships people get wrong (REFERENCE.md, "Encryption"; the seed note):

1. A trail with encryption "No" writes its log files with SSE-S3, not in clear.
2. Digest files are SSE-S3 always, whatever the trail's key and the bucket's default.
3. The trail's KMS key wins over the bucket's default for log files; everything else
   put into the bucket without encryption headers gets the bucket's default.
4. Object-level logging of S3 is a CloudTrail data-event selector, not an S3 setting.
5. A region allows five trails; the limit cannot be raised.

Logs and digests are judged with the validator's own rules (core.encryption), so that
`inspect` and `validate` flag the same objects with the same reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping

from ..model import BucketEncryption, ObjectMeta, ObjectRef
from ..results import UNVERIFIABLE, VALID, WARNING, Verdict
from .encryption import (SSE_KMS, SSE_S3, EncryptionPolicy, describe, digest_encryption, key_id, log_encryption,
                         unreadable_is_foreign)

LOG, DIGEST, OTHER = "log", "digest", "other"
CLASSES = (LOG, DIGEST, OTHER)
TRAILS_PER_REGION = 5

AS_EXPECTED, DISAGREES, UNKNOWN, NO_SAMPLE = "as_expected", "disagrees", "unknown", "no_sample"


# --- 2. encryption per object class ------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """The encryption one object class should have, and why."""

    object_class: str
    encryption: str  # "SSE-S3" | "SSE-KMS" | "unknown"
    kms_key: str | None
    why: str

    def describe(self) -> str:
        if self.encryption == "SSE-KMS":
            return f"SSE-KMS with {self.kms_key}"
        return self.encryption


def expected_log(policy: EncryptionPolicy) -> Expected:
    if policy.trail_kms_key:
        return Expected(LOG, "SSE-KMS", policy.trail_kms_key,
                        "the trail has a KMS key: CloudTrail puts its log files under that key, whatever the "
                        "bucket's default encryption says")
    return Expected(LOG, "SSE-S3", None,
                    "the trail has no KMS key (\"Encryption: No\"): CloudTrail still writes its log files with "
                    "SSE-S3, whatever the bucket's default encryption says")


def expected_digest() -> Expected:
    return Expected(DIGEST, "SSE-S3", None,
                    "CloudTrail writes digest files with SSE-S3 always, whatever the trail's KMS key and the "
                    "bucket's default encryption")


def expected_other(bucket: BucketEncryption) -> Expected:
    if bucket.error:
        return Expected(OTHER, "unknown", None,
                        f"the bucket's default encryption could not be read ({bucket.error}); "
                        "s3:GetEncryptionConfiguration is needed")
    if bucket.algorithm in SSE_KMS:
        return Expected(OTHER, "SSE-KMS", bucket.kms_key or bucket.configured_key,
                        "anything else put into the bucket without encryption headers gets the bucket's default "
                        "key (CloudTrail's own objects do not)")
    why = ("the bucket's default encryption is SSE-S3" if bucket.algorithm == SSE_S3 else
           "the bucket has no default encryption configured, and S3 applies SSE-S3 to every new object")
    return Expected(OTHER, "SSE-S3", None, why + ": anything else put into it without encryption headers gets SSE-S3")


def _unresolved(key: str | None) -> bool:
    """An alias (or anything but a key id or key ARN) cannot be compared with the key ARN S3 reports."""
    return bool(key) and ("alias/" in key)


def judge(expected: Expected, meta: ObjectMeta, policy: EncryptionPolicy) -> Verdict:
    """Does one sampled object have what its class should have? The validator's reasons for logs and digests."""
    if meta.sse_customer_algorithm and expected.object_class in (LOG, DIGEST):
        # SSE-C: CloudTrail never uses it, and nobody but the writer can read the object (validate: the same)
        return unreadable_is_foreign(meta, policy, expected.object_class == DIGEST) or Verdict(VALID)
    if expected.object_class == DIGEST:
        return digest_encryption(meta) or Verdict(VALID)
    if expected.object_class == LOG:
        if expected.kms_key and _unresolved(expected.kms_key) and meta.sse in SSE_KMS:
            return Verdict(UNVERIFIABLE, "key_unresolved",
                           f"stored with {describe(meta)}; the trail's key {expected.kms_key} could not be resolved "
                           "to a key ARN (kms:DescribeKey), so the two cannot be compared")
        return log_encryption(meta, policy) or Verdict(VALID)
    return _judge_other(expected, meta)


def _judge_other(expected: Expected, meta: ObjectMeta) -> Verdict:
    if expected.encryption == "unknown":
        return Verdict(UNVERIFIABLE, "bucket_encryption_unknown",
                       f"stored with {describe(meta)}; the bucket's default encryption is unknown")
    if meta.sse is None and not meta.sse_customer_algorithm:
        return Verdict(VALID)  # encryption not recorded: not judged (as the validator does)
    if expected.encryption == "SSE-KMS":
        if meta.sse in SSE_KMS and _unresolved(expected.kms_key):
            return Verdict(UNVERIFIABLE, "key_unresolved",
                           f"stored with {describe(meta)}; the bucket's default key {expected.kms_key} could not "
                           "be resolved to a key ARN (kms:DescribeKey), so the two cannot be compared")
        ok = meta.sse in SSE_KMS and key_id(meta.kms_key_id) == key_id(expected.kms_key)
    else:
        ok = meta.sse == SSE_S3 and not meta.sse_customer_algorithm
    if ok:
        return Verdict(VALID)
    return Verdict(WARNING, "unexpected_encryption",
                   f"stored with {describe(meta)}; the bucket's default is {expected.describe()}: put with explicit "
                   "encryption headers, or before the default changed")


@dataclass(frozen=True)
class Sample:
    """One sampled object: where it lies, what HEAD said (or why it could not say), and the verdict."""

    object_class: str
    ref: ObjectRef
    verdict: Verdict
    meta: ObjectMeta | None = None
    folder: str = ""  # where it was sampled: a region (with the account in an organization), or "bucket"
    region: str | None = None
    account_id: str | None = None
    last_modified: datetime | None = None


def sample_of(expected: Expected, policy: EncryptionPolicy, ref: ObjectRef, meta: ObjectMeta | None,
              error: tuple[str, str] | None = None, folder: str = "", region: str | None = None,
              account_id: str | None = None, last_modified: datetime | None = None) -> Sample:
    """A Sample from a HEAD answer (`meta`) or its failure (`error`: reason, message)."""
    if meta is None:
        reason, message = error or ("access_denied", "HEAD failed")
        verdict = Verdict(UNVERIFIABLE, reason, message)
    else:
        verdict = judge(expected, meta, policy)
        last_modified = meta.last_modified or last_modified
    return Sample(expected.object_class, ref, verdict, meta, folder, region, account_id, last_modified)


@dataclass(frozen=True)
class ClassReport:
    expected: Expected
    samples: tuple[Sample, ...] = ()
    note: str | None = None  # e.g. why there is no sample
    listed: Mapping[str, int] = field(default_factory=dict)  # folder label -> keys the sample was chosen from
    errors: tuple[str, ...] = ()  # folders that could not be listed

    @property
    def status(self) -> str:
        statuses = {s.verdict.status for s in self.samples}
        if statuses - {VALID, UNVERIFIABLE}:
            return DISAGREES
        if UNVERIFIABLE in statuses or self.errors or self.expected.encryption == "unknown":
            return UNKNOWN
        return AS_EXPECTED if self.samples else NO_SAMPLE


# --- 3. object-level logging ------------------------------------------------------------------


@dataclass(frozen=True)
class S3Scope:
    """S3 object data events one selector records: `bucket` None for every bucket, minus `excluding`."""

    bucket: str | None
    prefix: str = ""
    read_write: str = "All"  # All | ReadOnly | WriteOnly
    selector: str = ""
    excluding: tuple[str, ...] = ()  # ARN prefixes an advanced selector excludes (NotStartsWith/NotEquals)

    def covers(self, bucket: str, prefix: str = "") -> bool:
        if self.bucket is not None and self.bucket != bucket:
            return False
        if not (prefix.startswith(self.prefix) or self.prefix.startswith(prefix)):
            return False
        target = f"{bucket}/{prefix}"
        return not any(_arn_target(x) and target.startswith(_arn_target(x)) for x in self.excluding)

    def describe(self) -> str:
        where = "every bucket" if self.bucket is None else f"s3://{self.bucket}/{self.prefix}"
        if self.excluding:
            where += " except " + ", ".join(self.excluding)
        return where


@dataclass(frozen=True)
class ObjectLevelLogging:
    form: str  # "event_selectors" | "advanced_event_selectors" | "none"
    management_events: bool
    s3: tuple[S3Scope, ...] = ()
    other_data: tuple[str, ...] = ()  # resource types of other data events (Lambda, DynamoDB, ...)
    error: str | None = None  # GetEventSelectors failed

    @property
    def enabled(self) -> bool:
        return bool(self.s3)

    def covers(self, bucket: str, prefix: str = "") -> bool:
        return any(s.covers(bucket, prefix) for s in self.s3)


def _arn_target(value: str) -> str:
    """`arn:aws:s3:::bucket/prefix` -> `bucket/prefix`; `arn:aws:s3` or `arn:aws:s3:::` -> `` (every bucket)."""
    rest = value.split(":::", 1)[1] if ":::" in value else ""
    return rest


def _scope_from_arn(value: str, read_write: str, selector: str, excluding: tuple[str, ...] = ()) -> S3Scope:
    target = _arn_target(value)
    if not target:
        return S3Scope(None, "", read_write, selector, excluding)
    bucket, _, prefix = target.partition("/")
    return S3Scope(bucket, prefix, read_write, selector, excluding)


def _strs(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def object_level_logging(resp: Mapping[str, Any] | None, error: str | None = None) -> ObjectLevelLogging:
    """Parse a GetEventSelectors answer (EventSelectors or AdvancedEventSelectors; hostile shapes tolerated)."""
    if error is not None or resp is None:
        return ObjectLevelLogging("none", management_events=False, error=error or "no answer")
    advanced = [s for s in resp.get("AdvancedEventSelectors") or () if isinstance(s, Mapping)]
    if advanced:
        return _advanced(advanced)
    basic = [s for s in resp.get("EventSelectors") or () if isinstance(s, Mapping)]
    if not basic:  # no selectors at all: a trail's default, management events only
        return ObjectLevelLogging("none", management_events=True)
    scopes: list[S3Scope] = []
    other: list[str] = []
    management = False
    for i, sel in enumerate(basic):
        management |= sel.get("IncludeManagementEvents") is not False
        rw = sel.get("ReadWriteType") if sel.get("ReadWriteType") in ("ReadOnly", "WriteOnly") else "All"
        for res in sel.get("DataResources") or ():
            if not isinstance(res, Mapping):
                continue
            if res.get("Type") == "AWS::S3::Object":
                scopes += [_scope_from_arn(v, rw, f"EventSelectors[{i}]") for v in _strs(res.get("Values"))]
            elif isinstance(res.get("Type"), str):
                other.append(res["Type"])
    return ObjectLevelLogging("event_selectors", management, tuple(scopes), tuple(sorted(set(other))))


def _advanced(selectors: list[Mapping[str, Any]]) -> ObjectLevelLogging:
    scopes: list[S3Scope] = []
    other: list[str] = []
    management = False
    for i, sel in enumerate(selectors):
        fields = {f.get("Field"): f for f in sel.get("FieldSelectors") or () if isinstance(f, Mapping)}
        name = sel.get("Name") if isinstance(sel.get("Name"), str) else None
        label = f"AdvancedEventSelectors[{i}]" + (f" {name!r}" if name else "")
        category = _strs((fields.get("eventCategory") or {}).get("Equals"))
        if "Management" in category:
            management = True
            continue
        if "Data" not in category:
            continue
        types = _strs((fields.get("resources.type") or {}).get("Equals"))
        other += [t for t in types if t != "AWS::S3::Object"]
        if "AWS::S3::Object" not in types:
            continue
        ro = _strs((fields.get("readOnly") or {}).get("Equals"))
        rw = "ReadOnly" if ro == ["true"] else "WriteOnly" if ro == ["false"] else "All"
        arn = fields.get("resources.ARN") or {}
        included = _strs(arn.get("StartsWith")) + _strs(arn.get("Equals"))
        excluded = tuple(_strs(arn.get("NotStartsWith")) + _strs(arn.get("NotEquals")))
        if included:
            scopes += [_scope_from_arn(v, rw, label, excluded) for v in included]
        else:
            scopes.append(S3Scope(None, "", rw, label, excluded))
    return ObjectLevelLogging("advanced_event_selectors", management, tuple(scopes), tuple(sorted(set(other))))


# --- 4. trails in the region ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TrailCount:
    region: str
    trails: tuple[str, ...] = ()  # ARNs of the trails whose home is this region, in this account
    error: str | None = None
    limit: int = TRAILS_PER_REGION

    @property
    def count(self) -> int | None:
        return None if self.error else len(self.trails)


def count_trails(entries: Iterable[Mapping[str, Any]], region: str, account_id: str) -> TrailCount:
    """Trails of `account_id` whose home region is `region` (ListTrails also shows other regions' multi-region
    trails and organization trails of the management account: those count where they were created)."""
    arns = set()
    for t in entries:
        arn = t.get("TrailARN") if isinstance(t, Mapping) else None
        if not isinstance(arn, str):
            continue
        parts = arn.split(":")
        home = t.get("HomeRegion") if isinstance(t.get("HomeRegion"), str) else (parts[3] if len(parts) > 3 else "")
        if home == region and len(parts) > 4 and parts[4] == account_id:
            arns.add(arn)
    return TrailCount(region, tuple(sorted(arns)))


# --- the whole answer ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    account_id: str
    region: str
    organization_id: str | None
    digests: str  # s3://BUCKET/.../CloudTrail-Digest/REGION/
    logs: str


@dataclass
class Inspection:
    """Everything `inspect` found: the reporters' only input."""

    trail_arn: str
    trail: dict[str, Any]  # name, home region, bucket, prefix, KMS key, multi-region, organization
    status: dict[str, Any]  # logging, validation, latest deliveries and their errors
    bucket: str
    prefix: str
    bucket_encryption: BucketEncryption
    classes: list[ClassReport]
    logging: ObjectLevelLogging
    trails: TrailCount
    locations: list[Location]
    notes: list[str] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)  # what contradicts the trail's own status (exit 3)

    @property
    def delivery_errors(self) -> list[str]:
        names = {"latest_delivery_error": "log file delivery", "latest_digest_delivery_error": "digest delivery"}
        return [f"{label}: {self.status[k]}" for k, label in names.items() if self.status.get(k)]

    @property
    def exit_code(self) -> int:
        """0 as expected; 3 when something disagrees, could not be checked, or CloudTrail reports a delivery error."""
        if self.delivery_errors or self.anomalies or any(c.status in (DISAGREES, UNKNOWN) for c in self.classes):
            return 3
        return 0
