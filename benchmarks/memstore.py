"""An S3 (and CloudTrail) that lives in botocore's event system: no server, a fixed latency per request.

`MemoryAws.install(events)` registers `before-send` handlers on a botocore/boto3 session's event
system. Every request is still built, serialised, signed and its response parsed by botocore (the
client's whole request path runs); the handler answers it from memory after sleeping `latency`
seconds (a GET from S3 in the same region takes about 30 ms), so what is measured is the client,
not a server. With `s3=False` only CloudTrail is answered (ListPublicKeys, DescribeTrails,
GetTrailStatus: what moto lacks), and S3 requests go to the real endpoint.

Served: S3 GetObject, HeadObject, ListObjectsV2, ListObjects (v1, the AWS CLI's), GetBucketLocation,
HeadBucket, GetBucketEncryption (none configured); CloudTrail ListPublicKeys, DescribeTrails,
GetTrailStatus. Anything else is a 501, so that a benchmark never silently measures an error path.
"""

from __future__ import annotations

import bisect
import io
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from typing import Any, Iterator
from urllib.parse import parse_qsl, unquote, urlsplit
from xml.sax.saxutils import escape

import orjson
from botocore.awsrequest import AWSResponse

from validator.model import ObjectMeta, parse_time

PAGE = 1000  # S3's page size
JSON_11 = "application/x-amz-json-1.1"


class _Raw:
    """The part of a urllib3 response that botocore reads: read(amt), stream()."""

    def __init__(self, body: bytes):
        self._io = io.BytesIO(body)

    def read(self, amt: int | None = None, decode_content: bool = True) -> bytes:
        return self._io.read(amt if amt is not None else -1)

    def stream(self, amt: int = 1 << 16, decode_content: bool = True) -> Iterator[bytes]:
        while True:
            chunk = self._io.read(amt)
            if not chunk:
                return
            yield chunk

    def close(self) -> None:
        pass


@dataclass
class StoredEntry:
    meta: ObjectMeta
    body: bytes


@dataclass
class MemoryAws:
    """Objects by bucket and key, public keys, one trail's configuration and status."""

    latency: float = 0.030
    s3: bool = True
    objects: dict[str, dict[str, StoredEntry]] = field(default_factory=dict)
    public_keys: list[dict[str, Any]] = field(default_factory=list)  # list-public-keys entries (CLI shape)
    trail: dict[str, Any] | None = None  # DescribeTrails entry
    status: dict[str, Any] = field(default_factory=dict)  # GetTrailStatus answer
    requests: int = 0
    _sorted: dict[str, list[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, meta: ObjectMeta, body: bytes) -> None:
        self.objects.setdefault(meta.ref.bucket, {})[meta.ref.key] = StoredEntry(meta, body)
        self._sorted.pop(meta.ref.bucket, None)

    def keys(self, bucket: str) -> list[str]:
        if bucket not in self._sorted:
            self._sorted[bucket] = sorted(self.objects.get(bucket, {}))
        return self._sorted[bucket]

    def stored_bytes(self) -> int:
        return sum(len(e.body) for b in self.objects.values() for e in b.values())

    # --- the hooks -------------------------------------------------------------------------------

    def install(self, events: Any) -> None:
        """Register on a session's event system (`boto3.Session().events`, `botocore_session`)."""
        for bucket in self.objects:
            self.keys(bucket)  # sort once, before any thread lists
        events.register("before-send.cloudtrail", self._cloudtrail)
        if self.s3:
            events.register("before-send.s3", self._s3)

    def _wait(self) -> None:
        with self._lock:
            self.requests += 1
        if self.latency:
            time.sleep(self.latency)

    # --- CloudTrail (JSON 1.1) -------------------------------------------------------------------

    def _cloudtrail(self, request: Any, event_name: str, **_: Any) -> AWSResponse:
        self._wait()
        op = event_name.rsplit(".", 1)[-1]
        if op == "ListPublicKeys":
            body = {"PublicKeyList": [{"Value": k["Value"], "Fingerprint": k["Fingerprint"],
                                       "ValidityStartTime": parse_time(k["ValidityStartTime"]).timestamp(),
                                       "ValidityEndTime": parse_time(k["ValidityEndTime"]).timestamp()}
                                      for k in self.public_keys]}
        elif op == "DescribeTrails":
            body = {"trailList": [self.trail] if self.trail else []}
        elif op == "GetTrailStatus":
            body = self.status
        else:
            return _response(request, 501, b'{"__type":"NotImplemented"}', {"content-type": JSON_11})
        return _response(request, 200, orjson.dumps(body), {"content-type": JSON_11})

    # --- S3 (REST XML) ---------------------------------------------------------------------------

    def _s3(self, request: Any, event_name: str, **_: Any) -> AWSResponse:
        self._wait()
        op = event_name.rsplit(".", 1)[-1]
        parts = urlsplit(request.url)
        bucket, key = self._bucket_key(parts.netloc, unquote(parts.path))
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if bucket not in self.objects:
            return _xml(request, 404, _error("NoSuchBucket", "The specified bucket does not exist"))
        if op in ("GetObject", "HeadObject"):
            entry = self.objects[bucket].get(key)
            if entry is None:
                return _xml(request, 404, b"" if op == "HeadObject" else _error("NoSuchKey", "no such key"))
            return _response(request, 200, entry.body if op == "GetObject" else b"", _object_headers(entry))
        if op == "ListObjectsV2":
            return _xml(request, 200, self._list(bucket, query, v2=True))
        if op == "ListObjects":
            return _xml(request, 200, self._list(bucket, query, v2=False))
        if op == "GetBucketLocation":
            return _xml(request, 200, b'<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint '
                                      b'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></LocationConstraint>')
        if op == "HeadBucket":
            return _response(request, 200, b"", {"x-amz-bucket-region": "us-east-1"})
        if op == "GetBucketEncryption":
            return _xml(request, 404, _error("ServerSideEncryptionConfigurationNotFoundError", "none"))
        return _xml(request, 501, _error("NotImplemented", op))

    def _bucket_key(self, host: str, path: str) -> tuple[str, str]:
        label = host.split(".", 1)[0]
        if label in self.objects and "." in host:  # virtual-hosted style
            return label, path.lstrip("/")
        bucket, _, key = path.lstrip("/").partition("/")
        return bucket, key

    def _list(self, bucket: str, q: dict[str, str], v2: bool) -> bytes:
        keys = self.keys(bucket)
        prefix = q.get("prefix", "")
        delimiter = q.get("delimiter") or None
        limit = min(int(q.get("max-keys") or PAGE), PAGE)
        after = q.get("continuation-token") or q.get("start-after") if v2 else q.get("marker")
        i = bisect.bisect_right(keys, after) if after else bisect.bisect_left(keys, prefix)
        i = max(i, bisect.bisect_left(keys, prefix))
        contents: list[str] = []
        prefixes: list[str] = []
        last = None
        while i < len(keys) and len(contents) + len(prefixes) < limit and keys[i].startswith(prefix):
            k = keys[i]
            if delimiter and delimiter in k[len(prefix):]:
                cp = k[:len(prefix) + k[len(prefix):].index(delimiter) + len(delimiter)]
                prefixes.append(cp)
                last = cp
                i = bisect.bisect_left(keys, cp[:-1] + chr(ord(cp[-1]) + 1))
                continue
            m = self.objects[bucket][k].meta
            contents.append(f"<Contents><Key>{escape(k)}</Key><LastModified>{_iso(m.last_modified)}</LastModified>"
                            f"<ETag>&quot;{m.etag}&quot;</ETag><Size>{m.size}</Size>"
                            f"<StorageClass>{m.storage_class or 'STANDARD'}</StorageClass></Contents>")
            last = k
            i += 1
        truncated = i < len(keys) and keys[i].startswith(prefix)
        head = (f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/'
                f'2006-03-01/"><Name>{escape(bucket)}</Name><Prefix>{escape(prefix)}</Prefix>'
                f"<MaxKeys>{limit}</MaxKeys><IsTruncated>{'true' if truncated else 'false'}</IsTruncated>")
        if delimiter:
            head += f"<Delimiter>{escape(delimiter)}</Delimiter>"
        if v2:
            head += f"<KeyCount>{len(contents) + len(prefixes)}</KeyCount>"
            if truncated and last:
                head += f"<NextContinuationToken>{escape(last)}</NextContinuationToken>"
        elif truncated and last and delimiter:
            head += f"<NextMarker>{escape(last)}</NextMarker>"
        body = head + "".join(contents) + "".join(
            f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>" for p in prefixes)
        return (body + "</ListBucketResult>").encode()


def _iso(dt: datetime | None) -> str:
    return (dt or datetime(2026, 1, 1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _object_headers(entry: StoredEntry) -> dict[str, str]:
    m = entry.meta
    h = {"content-length": str(len(entry.body)), "content-type": "application/octet-stream",
         "etag": f'"{m.etag}"', "accept-ranges": "bytes"}
    if m.last_modified is not None:
        h["last-modified"] = format_datetime(m.last_modified, usegmt=True)
    if m.sse:
        h["x-amz-server-side-encryption"] = m.sse
    if m.kms_key_id:
        h["x-amz-server-side-encryption-aws-kms-key-id"] = m.kms_key_id
    if m.storage_class and m.storage_class != "STANDARD":
        h["x-amz-storage-class"] = m.storage_class
    for k, v in (m.metadata or {}).items():
        h[f"x-amz-meta-{k}"] = v
    return h


def _error(code: str, message: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{escape(message)}'
            f"</Message><RequestId>mem</RequestId></Error>").encode()


def _xml(request: Any, status: int, body: bytes) -> AWSResponse:
    return _response(request, status, body, {"content-type": "application/xml", "content-length": str(len(body))})


def _response(request: Any, status: int, body: bytes, headers: dict[str, str]) -> AWSResponse:
    headers = {"x-amz-request-id": "mem", **headers}
    headers.setdefault("content-length", str(len(body)))
    return AWSResponse(request.url, status, headers, _Raw(body))


def from_evidence(path: str, latency: float, s3: bool = True) -> MemoryAws:
    """Load an evidence directory (objects, metadata, keys, trail status) into a MemoryAws (objects only with s3)."""
    from validator.sources.evidence import EvidenceSource

    src = EvidenceSource(path)
    mem = MemoryAws(latency=latency, s3=s3)
    for bucket in src.buckets():
        mem.objects.setdefault(bucket, {})
        for obj in src.list(bucket, "") if s3 else ():  # without S3, only CloudTrail is served: no bodies
            with src.open(obj.ref) as stream:
                mem.put(stream.meta, b"".join(stream.chunks()))
    mem.public_keys = list(orjson.loads((src.root / "public-keys.json").read_bytes()).get("PublicKeyList") or [])
    t = src.trail
    if t is not None:
        mem.trail = {"Name": t.name, "TrailARN": f"arn:aws:cloudtrail:{t.home_region}:{t.account_id}:trail/{t.name}",
                     "S3BucketName": t.bucket, "HomeRegion": t.home_region,
                     "IsMultiRegionTrail": bool(t.is_multi_region),
                     "IsOrganizationTrail": t.is_organization_trail, "LogFileValidationEnabled": True}
        if t.prefix:
            mem.trail["S3KeyPrefix"] = t.prefix
        if t.kms_key_id:
            mem.trail["KmsKeyId"] = t.kms_key_id
        mem.status = {"IsLogging": bool(t.is_logging)}
        if t.latest_digest_delivery:
            mem.status["LatestDigestDeliveryTime"] = t.latest_digest_delivery.timestamp()
        if t.latest_delivery:
            mem.status["LatestDeliveryTime"] = t.latest_delivery.timestamp()
    return mem
