"""A synthetic CloudTrail trail: realistic log files, hourly signed digests, real RSA keys.

Used by tests, fixtures and benchmarks. The trail is held in memory as the
objects CloudTrail would have written (bytes plus S3 metadata and encryption);
writers put it into an evidence directory or an S3 bucket, and the tamper
operations in :mod:`validator.synth.tamper` change it as an attacker would.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import random
import string
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..core.keys import fingerprint_of
from ..model import ObjectMeta, ObjectRef, digest_key, format_time, log_key, normalize_prefix
from ..sources.base import TrailInfo

UTC = timezone.utc
HOUR = timedelta(hours=1)


@dataclass
class StoredObject:
    meta: ObjectMeta
    body: bytes

    @property
    def ref(self) -> ObjectRef:
        return self.meta.ref


@dataclass
class SigningKey:
    region: str
    private: rsa.RSAPrivateKey
    valid_from: datetime
    valid_to: datetime

    @property
    def der(self) -> bytes:
        return self.private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.der)

    def public_entry(self) -> dict[str, Any]:
        return {"Value": base64.b64encode(self.der).decode(), "ValidityStartTime": format_time(self.valid_from),
                "ValidityEndTime": format_time(self.valid_to), "Fingerprint": self.fingerprint}

    def sign(self, message: bytes) -> str:
        return self.private.sign(message, padding.PKCS1v15(), hashes.SHA256()).hex()


@dataclass
class TrailSpec:
    """What to generate. Hours are counted from `start`; `stops` are [from, to) hours without logging."""

    trail_name: str = "demo-trail"
    home_region: str = "us-east-1"
    regions: tuple[str, ...] = ("us-east-1", "eu-west-1")
    accounts: tuple[str, ...] = ("111122223333",)
    org_id: str | None = None
    bucket: str = "ct-demo-logs"
    prefix: str = ""
    start: datetime = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
    hours: int = 6
    logs_per_hour: tuple[int, int] = (1, 3)
    events_per_log: tuple[int, int] = (3, 12)
    rotate_at_hour: int | None = 3
    stops: tuple[tuple[int, int], ...] = ()
    backfill_hours: tuple[int, ...] = ()
    kms_key_arn: str | None = None
    bucket_default_key: str | None = None
    logging_at_end: bool = False  # False: logging stopped after the last hour, evidence acquired 2 days later
    seed: int = 1
    key_bits: int = 2048
    padding_bytes: int = 0  # extra bytes per event, to make large log files
    explain_stops: bool = True  # False: the StopLogging/StartLogging events are left out (an unexplained gap)
    operator: str = "alice"  # the IAM user who stops and restarts logging
    operator_ip: str | None = None  # their source IP (default: a random one of 198.51.100.0/24)

    @property
    def trail_account(self) -> str:
        return self.accounts[0]

    @property
    def trail_arn(self) -> str:
        return f"arn:aws:cloudtrail:{self.home_region}:{self.trail_account}:trail/{self.trail_name}"


_KEY_CACHE: dict[tuple[int, int, str, int], rsa.RSAPrivateKey] = {}


def _private_key(seed: int, bits: int, region: str, n: int) -> rsa.RSAPrivateKey:
    """RSA keys are slow to make; tests make many trails, so keys are cached per process."""
    k = (seed, bits, region, n)
    if k not in _KEY_CACHE:
        _KEY_CACHE[k] = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return _KEY_CACHE[k]


_EVENTS = [
    ("ec2.amazonaws.com", "DescribeInstances", True), ("s3.amazonaws.com", "ListBuckets", True),
    ("iam.amazonaws.com", "GetRole", True), ("sts.amazonaws.com", "AssumeRole", False),
    ("ec2.amazonaws.com", "RunInstances", False), ("kms.amazonaws.com", "Decrypt", True),
    ("lambda.amazonaws.com", "ListFunctions20150331", True), ("iam.amazonaws.com", "CreateAccessKey", False),
    ("signin.amazonaws.com", "ConsoleLogin", False), ("s3.amazonaws.com", "PutBucketPolicy", False),
    ("cloudtrail.amazonaws.com", "DescribeTrails", True), ("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", False),
]
_USERS = ["alice", "bob", "deploy-bot", "carol", "ci-runner"]
_AGENTS = ["aws-cli/2.15.30 Python/3.11.8 Linux/6.1", "console.amazonaws.com", "Boto3/1.34.0 Python/3.12.1",
           "aws-sdk-go-v2/1.25.0", "terraform-provider-aws/5.40.0"]


class TrailGenerator:
    def __init__(self, spec: TrailSpec):
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.keys: dict[str, list[SigningKey]] = {}
        self.objects: dict[ObjectRef, StoredObject] = {}
        self.principal_arn = f"arn:aws:iam::{spec.trail_account}:user/alice"

    # --- keys

    def _region_keys(self, region: str) -> list[SigningKey]:
        if region not in self.keys:
            s = self.spec
            t_rot = s.start + HOUR * (s.rotate_at_hour if s.rotate_at_hour is not None else 10**5)
            first = SigningKey(region, _private_key(s.seed, s.key_bits, region, 0),
                               s.start - timedelta(days=30), t_rot + timedelta(hours=2))
            keys = [first]
            if s.rotate_at_hour is not None:
                keys.append(SigningKey(region, _private_key(s.seed, s.key_bits, region, 1), t_rot,
                                       t_rot + timedelta(days=30)))
            self.keys[region] = keys
        return self.keys[region]

    def key_for(self, region: str, at: datetime) -> SigningKey:
        keys = self._region_keys(region)
        s = self.spec
        if s.rotate_at_hour is not None and at >= s.start + HOUR * s.rotate_at_hour:
            return keys[1]
        return keys[0]

    # --- events and log files

    def _event(self, account: str, region: str, at: datetime, name: str | None = None,
               source: str | None = None, params: dict[str, Any] | None = None) -> dict[str, Any]:
        rng = self.rng
        src, ev, ro = rng.choice(_EVENTS)
        if name is not None:
            src, ev, ro = source or "cloudtrail.amazonaws.com", name, False
        user = rng.choice(_USERS) if name is None else self.spec.operator
        e = {
            "eventVersion": "1.09",
            "userIdentity": {"type": "IAMUser", "principalId": "AIDA" + "".join(rng.choices(string.ascii_uppercase, k=16)),
                             "arn": f"arn:aws:iam::{account}:user/{user}", "accountId": account,
                             "accessKeyId": "AKIA" + "".join(rng.choices(string.ascii_uppercase + string.digits, k=16)),
                             "userName": user},
            "eventTime": format_time(at), "eventSource": src, "eventName": ev, "awsRegion": region,
            "sourceIPAddress": f"198.51.100.{rng.randint(1, 254)}", "userAgent": rng.choice(_AGENTS),
            "requestParameters": params if params is not None else {"maxResults": rng.randint(5, 1000)},
            "responseElements": None, "requestID": str(uuid.UUID(int=rng.getrandbits(128))),
            "eventID": str(uuid.UUID(int=rng.getrandbits(128))), "readOnly": ro, "eventType": "AwsApiCall",
            "managementEvent": True, "recipientAccountId": account, "eventCategory": "Management",
        }
        if name is not None and self.spec.operator_ip:
            e["sourceIPAddress"] = self.spec.operator_ip
        if self.spec.padding_bytes:
            e["additionalEventData"] = {"pad": "".join(rng.choices(string.ascii_letters, k=self.spec.padding_bytes))}
        return e

    def _log(self, account: str, region: str, delivered: datetime,
             extra_events: list[dict[str, Any]] = ()) -> tuple[StoredObject, dict[str, Any]]:
        s, rng = self.spec, self.rng
        n = rng.randint(*s.events_per_log)
        times = sorted(delivered - timedelta(seconds=rng.randint(30, 900)) for _ in range(n))
        events = [self._event(account, region, t) for t in times] + list(extra_events)
        raw = orjson.dumps({"Records": events})
        unique = "".join(rng.choices(string.ascii_letters + string.digits, k=16))
        key = log_key(normalize_prefix(s.prefix), s.org_id, account, region, delivered, unique)
        body = gzip.compress(raw, compresslevel=6, mtime=0)
        sse, kms = ("aws:kms", s.kms_key_arn) if s.kms_key_arn else ("AES256", None)
        meta = ObjectMeta(ref=ObjectRef(s.bucket, key), size=len(body), etag=hashlib.md5(body).hexdigest(),
                          last_modified=delivered + timedelta(seconds=rng.randint(5, 120)),
                          storage_class="STANDARD", sse=sse, kms_key_id=kms, metadata={})
        ets = [e["eventTime"] for e in events]
        entry = {"s3Bucket": s.bucket, "s3Object": key, "hashValue": hashlib.sha256(raw).hexdigest(),
                 "hashAlgorithm": "SHA-256", "newestEventTime": max(ets), "oldestEventTime": min(ets)}
        return StoredObject(meta, body), entry

    # --- digests

    def make_digest(self, account: str, region: str, start: datetime, end: datetime, logs: list[dict[str, Any]],
                    previous: StoredObject | None, previous_raw: bytes | None, backfill_at: datetime | None = None,
                    signer: SigningKey | None = None) -> tuple[StoredObject, bytes]:
        s = self.spec
        key = digest_key(normalize_prefix(s.prefix), s.org_id, account, region, s.trail_name, s.home_region, end,
                         backfill=backfill_at is not None)
        signer = signer or self.key_for(region, backfill_at or end)
        prev_sig = previous.meta.metadata["signature"] if previous else None
        doc = {
            "awsAccountId": account, "digestStartTime": format_time(start), "digestEndTime": format_time(end),
            "digestS3Bucket": s.bucket, "digestS3Object": key, "digestPublicKeyFingerprint": signer.fingerprint,
            "digestSignatureAlgorithm": "SHA256withRSA",
            "newestEventTime": max((x["newestEventTime"] for x in logs), default=None),
            "oldestEventTime": min((x["oldestEventTime"] for x in logs), default=None),
            "previousDigestS3Bucket": previous.ref.bucket if previous else None,
            "previousDigestS3Object": previous.ref.key if previous else None,
            "previousDigestHashValue": hashlib.sha256(previous_raw).hexdigest() if previous_raw else None,
            "previousDigestHashAlgorithm": "SHA-256" if previous else None,
            "previousDigestSignature": prev_sig, "logFiles": logs,
        }
        raw = orjson.dumps(doc)
        obj = sign_digest_object(raw, doc, signer, ObjectRef(s.bucket, key),
                                 last_modified=(backfill_at or end) + timedelta(seconds=self.rng.randint(60, 600)),
                                 backfill_at=backfill_at)
        return obj, raw

    # --- the whole trail

    def generate(self) -> "SyntheticTrail":
        s = self.spec
        raws: dict[ObjectRef, bytes] = {}
        last_digest_end = s.start
        for account in s.accounts:
            for region in s.regions:
                last_digest_end = max(last_digest_end, self._region_history(account, region, raws))
        stopped = not s.logging_at_end
        latest = last_digest_end + timedelta(minutes=5)
        acquired = latest + (timedelta(days=2) if stopped else timedelta(minutes=20))
        trail = TrailInfo(
            name=s.trail_name, home_region=s.home_region, account_id=s.trail_account, bucket=s.bucket,
            prefix=s.prefix.strip("/"), kms_key_id=s.kms_key_arn, is_organization_trail=s.org_id is not None,
            organization_id=s.org_id, is_multi_region=len(s.regions) > 1, log_file_validation=True,
            is_logging=not stopped, latest_digest_delivery=latest, latest_delivery=latest,
            bucket_default_key=s.bucket_default_key,
            raw={"TrailARN": s.trail_arn, "S3BucketName": s.bucket, "S3KeyPrefix": s.prefix.strip("/") or None,
                 "KmsKeyId": s.kms_key_arn, "IsOrganizationTrail": s.org_id is not None,
                 "IsMultiRegionTrail": len(s.regions) > 1, "LogFileValidationEnabled": True,
                 "HomeRegion": s.home_region},
        )
        return SyntheticTrail(spec=s, objects=self.objects, raw_digests=raws, keys=self.keys, trail=trail,
                              acquired_at=acquired, generator=self)

    def _logging_on(self, hour: int) -> bool:
        return not any(a <= hour < b for a, b in self.spec.stops)

    def _region_history(self, account: str, region: str, raws: dict[ObjectRef, bytes]) -> datetime:
        s, rng = self.spec, self.rng
        previous: StoredObject | None = None
        previous_raw: bytes | None = None
        prev_backfill: tuple[StoredObject, bytes] | None = None
        end = s.start
        for hour in range(s.hours):
            if not self._logging_on(hour):
                previous, previous_raw = None, None  # the chain ended; the next digest starts a new one
                continue
            start = end if previous is not None else s.start + HOUR * hour
            end = s.start + HOUR * (hour + 1) + timedelta(seconds=rng.randint(0, 50))
            entries = []
            for i in range(rng.randint(*s.logs_per_hour)):
                delivered = s.start + HOUR * hour + timedelta(minutes=rng.randint(1, 58))
                extra = self._control_events(account, region, hour, i, delivered)
                obj, entry = self._log(account, region, delivered, extra)
                self.objects[obj.ref] = obj
                entries.append(entry)
            entries.sort(key=lambda x: x["s3Object"])
            digest, raw = self.make_digest(account, region, start, end, entries, previous, previous_raw)
            self.objects[digest.ref] = digest
            raws[digest.ref] = raw
            previous, previous_raw = digest, raw
            if hour in s.backfill_hours:
                late_at = s.start + HOUR * hour + timedelta(minutes=59)
                late, entry = self._log(account, region, late_at)
                self.objects[late.ref] = late
                bf_at = end + timedelta(hours=3)
                bf, bf_raw = self.make_digest(account, region, start, end, [entry],
                                              prev_backfill[0] if prev_backfill else None,
                                              prev_backfill[1] if prev_backfill else None, backfill_at=bf_at)
                self.objects[bf.ref] = bf
                raws[bf.ref] = bf_raw
                prev_backfill = (bf, bf_raw)
        return end

    def _control_events(self, account: str, region: str, hour: int, index: int, at: datetime) -> list[dict[str, Any]]:
        """StopLogging in the last log before a stop, StartLogging in the first log after it (home region)."""
        s = self.spec
        if region != s.home_region or account != s.trail_account or not s.explain_stops:
            return []
        out = []
        params = {"name": s.trail_arn}
        for a, b in s.stops:
            if hour == a - 1 and index == 0:
                out.append(self._event(account, region, at - timedelta(seconds=20), "StopLogging", params=params))
            if hour == b and index == 0:
                out.append(self._event(account, region, at - timedelta(seconds=600), "StartLogging", params=params))
        return out


def sign_digest_object(raw: bytes, doc: dict[str, Any], signer: SigningKey, where: ObjectRef,
                       last_modified: datetime, backfill_at: datetime | None = None,
                       algorithm: str = "SHA256withRSA") -> StoredObject:
    """Gzip a digest and sign it as CloudTrail does; the signature goes in the object's metadata."""
    sha = hashlib.sha256(raw).hexdigest()
    prev = doc.get("previousDigestSignature")
    message = (f"{doc['digestEndTime']}\n{doc['digestS3Bucket']}/{doc['digestS3Object']}\n{sha}\n"
               f"{prev if prev is not None else 'null'}").encode()
    metadata = {"signature": signer.sign(message), "signature-algorithm": algorithm}
    if backfill_at is not None:
        metadata["backfill-generation-timestamp"] = format_time(backfill_at)
    body = gzip.compress(raw, compresslevel=6, mtime=0)
    meta = ObjectMeta(ref=where, size=len(body), etag=hashlib.md5(body).hexdigest(), last_modified=last_modified,
                      storage_class="STANDARD", sse="AES256", metadata=metadata)
    return StoredObject(meta, body)


@dataclass
class SyntheticTrail:
    spec: TrailSpec
    objects: dict[ObjectRef, StoredObject]
    raw_digests: dict[ObjectRef, bytes]
    keys: dict[str, list[SigningKey]]
    trail: TrailInfo
    acquired_at: datetime
    generator: TrailGenerator
    tampered: list[str] = field(default_factory=list)

    @property
    def arn(self) -> str:
        return self.spec.trail_arn

    def public_key_list(self, region: str | None = None) -> list[dict[str, Any]]:
        return [k.public_entry() for r in sorted(self.keys) if region in (None, r) for k in self.keys[r]]

    def public_keys_doc(self, region: str | None = None) -> dict[str, Any]:
        return {"PublicKeyList": self.public_key_list(region)}

    def digests(self, account: str | None = None, region: str | None = None,
                backfill: bool | None = False) -> list[StoredObject]:
        return sorted((o for o in self.objects.values() if "/CloudTrail-Digest/" in o.ref.key
                       and (account is None or f"/{account}/" in o.ref.key)
                       and (region is None or f"/CloudTrail-Digest/{region}/" in o.ref.key)
                       and (backfill is None or o.ref.key.endswith("_backfill.json.gz") == backfill)),
                      key=lambda o: (o.ref.key[-24:], o.ref.key))

    def logs(self, account: str | None = None, region: str | None = None) -> list[StoredObject]:
        return sorted((o for o in self.objects.values() if "/CloudTrail/" in o.ref.key
                       and (account is None or f"/{account}/" in o.ref.key)
                       and (region is None or f"/CloudTrail/{region}/" in o.ref.key)), key=lambda o: o.ref.key)

    def digest_doc(self, ref: ObjectRef) -> dict[str, Any]:
        return orjson.loads(gzip.decompress(self.objects[ref].body))

    def listed_logs(self) -> set[ObjectRef]:
        out = set()
        for d in self.digests(backfill=None):
            for e in self.digest_doc(d.ref)["logFiles"]:
                out.add(ObjectRef(e["s3Bucket"], e["s3Object"]))
        return out

    def iter_objects(self) -> Iterator[StoredObject]:
        for ref in sorted(self.objects):
            yield self.objects[ref]

    def write_evidence(self, dest: str, acquired_at: datetime | None = None) -> str:
        """Write the trail as an evidence directory; returns the seal (manifest SHA-256)."""
        from ..sources.evidence import EvidenceWriter
        w = EvidenceWriter(dest)
        for obj in self.iter_objects():
            w.add(obj.meta, [obj.body])
        return w.finish(acquired_at=acquired_at or self.acquired_at, trail=self.trail,
                        public_keys=self.public_key_list(), source="synthetic")

    def with_meta(self, ref: ObjectRef, **changes: Any) -> None:
        obj = self.objects[ref]
        obj.meta = replace(obj.meta, **changes)


def generate(spec: TrailSpec | None = None, **overrides: Any) -> SyntheticTrail:
    spec = replace(spec or TrailSpec(), **overrides)
    return TrailGenerator(spec).generate()
