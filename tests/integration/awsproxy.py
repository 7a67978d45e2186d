"""A test-only HTTP proxy in front of moto's server: what moto lacks, added at the HTTP boundary.

The validator under test talks plain AWS HTTP to this proxy (`--endpoint-url`);
nothing in the validator or botocore is patched. The proxy forwards every
request to moto unchanged, except:

- CloudTrail ListPublicKeys (moto has none): answered from `state.public_keys`,
  strictly per region (the region of the request's SigV4 credential scope),
  filtered by validity overlap with StartTime/EndTime, in pages of
  `state.key_page_size` with NextToken;
- CloudTrail GetTrailStatus: moto's answer with `LatestDigestDeliveryTime`,
  `LatestDeliveryTime` and `IsLogging` of the registered synthetic trail;
- S3 GetObject of an SSE-KMS object whose key is in `state.denied_kms_keys`:
  403 AccessDenied naming kms:Decrypt, as S3 answers a caller without it
  (HEAD still answers: it needs no decryption);
- SSE-C: a PUT with a customer key is remembered; GET/HEAD without the key are
  refused with 400 as S3 refuses them (moto ignores SSE-C altogether);
- `state.denied_list_buckets`, `state.denied_list_prefixes`, `state.denied_objects`,
  `state.denied_version_listing` (ListObjectVersions only): 403 AccessDenied;
- `state.denied_bucket_ops`: (bucket, operation) pairs, e.g. GetBucketEncryption, refused with 403 AccessDenied;
- `state.denied_operations`: JSON-protocol operations (CloudTrail, KMS: e.g. DescribeKey, ListTrails) refused
  with AccessDeniedException, as IAM refuses them;
- `state.rejected_access_keys`: every request signed with one of them is refused as AWS refuses
  unknown credentials;
- `state.faults`: misbehaviour on chosen requests (see `Fault`): before any answer (a delay or stall,
  503 SlowDown / ThrottlingException, 500, a reset), or in a GetObject body (cut short, reset or stalled
  mid-body, trickled, longer or shorter than its Content-Length, a byte changed under the real ETag);
  on object reads by key, or on any operation by name (ListObjectsV2, DescribeTrails, GetTrailStatus,
  ListPublicKeys, ...);
- ListObjectsV2 and ListObjectVersions pages are capped at `state.list_page_size` keys, so that
  every listing exercises continuation tokens and key markers;
- `state.write_times` pins the LastModified of objects (bucket, key, version id) to the time
  CloudTrail would have written them (moto's is the upload time, today): GET/HEAD headers and
  ListObjectVersions entries carry the pinned time. An unversioned object overwritten or deleted
  through the proxy loses its pin, so only a re-upload after deployment shows its real time.
Every request is logged in `state.calls` as (service, operation, region, detail), and object GETs
are counted per access key in `state.object_gets` (who read: the driver or a Dask worker).
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from validator.model import parse_time

_CRED = re.compile(r"Credential=([^/]+)/\d{8}/([a-z0-9\-]+)/([a-z0-9\-]+)/aws4_request")
_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
        "transfer-encoding", "upgrade", "content-length", "host"}
_SSE_C_HEADERS = ("x-amz-server-side-encryption-customer-algorithm", "x-amz-server-side-encryption-customer-key",
                  "x-amz-server-side-encryption-customer-key-md5")
#: how S3 words a refused kms:Decrypt: the current IAM message (no key ARN), the older KMS one, or nothing
KMS_MESSAGES = {
    "iam": "User: arn:aws:iam::{account}:user/auditor is not authorized to perform: kms:Decrypt on the "
           "resource associated with this ciphertext because the resource does not exist in this account, "
           "no resource-based policy allows access, or a resource-based policy explicitly denies access",
    "ciphertext": "The ciphertext refers to a customer master key that does not exist, does not exist in this "
                  "region, or you are not allowed to access.",
    "plain": "Access Denied",
}
SSE_C_MESSAGE = ("The object was stored using a form of Server Side Encryption. The correct parameters must be "
                 "provided to retrieve the object.")


#: faults answered instead of the request (any operation)
BEFORE_KINDS = ("delay", "throttle", "error500", "reset")
#: faults in a GetObject body (the real status and headers, the real ETag)
BODY_KINDS = ("truncate", "reset_body", "stall", "slow", "long_body", "short_length", "corrupt")


@dataclass
class Fault:
    """Misbehave on matching requests.

    Matching: with `operation` None, object requests of `method` whose key contains `key_contains`;
    with `operation` set (e.g. "ListObjectsV2", "DescribeTrails"), requests of that operation whose
    key or list prefix contains `key_contains`.

    Kinds, before any answer: `delay` (sleep `delay` seconds, then answer: a stall when longer than
    the client's read timeout), `throttle` (503 SlowDown; CloudTrail: ThrottlingException), `error500`,
    `reset` (the connection is reset without an answer). In a GetObject body: `truncate` (half the body,
    then the connection closes), `reset_body` (half the body, then a TCP reset), `stall` (half the body,
    then nothing for `delay` seconds, default 30), `slow` (the whole body in 16 pieces, `delay` seconds
    apart, default 0.05), `long_body` (the body, then junk beyond its Content-Length), `short_length`
    (a Content-Length of half the body, and that half: a complete answer that is not the object),
    `corrupt` (one byte changed, same length, the real ETag).
    """

    kind: str
    key_contains: str
    method: str = "GET"
    times: int = 1  # how many matching requests; -1 for all
    delay: float = 0.0
    operation: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in BEFORE_KINDS + BODY_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")


@dataclass
class ProxyState:
    public_keys: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # region -> CLI-shape entries
    key_page_size: int = 1
    trail_status: dict[str, dict[str, Any]] = field(default_factory=dict)  # trail name or ARN -> fields
    denied_kms_keys: set[str] = field(default_factory=set)  # key ARNs or ids
    denied_list_buckets: set[str] = field(default_factory=set)
    denied_objects: set[tuple[str, str]] = field(default_factory=set)
    sse_c: dict[tuple[str, str], str] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    list_page_size: int | None = 5
    rejected_access_keys: set[str] = field(default_factory=set)
    denied_list_prefixes: set[tuple[str, str]] = field(default_factory=set)  # (bucket, key prefix)
    denied_version_listing: set[str] = field(default_factory=set)  # buckets: ListObjectVersions refused
    denied_bucket_ops: set[tuple[str, str]] = field(default_factory=set)  # (bucket, operation)
    denied_operations: set[str] = field(default_factory=set)  # X-Amz-Target operation names
    kms_message: str = "iam"  # a key of KMS_MESSAGES
    write_times: dict[tuple[str, str, str | None], datetime] = field(default_factory=dict)
    account: str = "111122223333"
    calls: list[tuple[str, str, str, str]] = field(default_factory=list)
    object_gets: dict[str, int] = field(default_factory=dict)  # access key -> S3 GETs of an object signed with it
    faults_fired: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, operation, key)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            fresh = ProxyState(account=self.account)
            for name in ("public_keys", "key_page_size", "trail_status", "denied_kms_keys", "denied_list_buckets",
                         "denied_objects", "sse_c", "faults", "list_page_size", "rejected_access_keys", "kms_message",
                         "denied_list_prefixes", "calls", "write_times", "denied_version_listing", "denied_bucket_ops",
                         "denied_operations", "object_gets", "faults_fired"):
                setattr(self, name, getattr(fresh, name))

    def calls_of(self, operation: str) -> list[tuple[str, str, str, str]]:
        with self.lock:
            return [c for c in self.calls if c[1] == operation]

    def take_fault(self, method: str, key: str, operation: str | None = None) -> Fault | None:
        """The first fault matching an object request (`operation` None) or an operation, used up once."""
        with self.lock:
            for f in self.faults:
                if f.times == 0 or f.key_contains not in key:
                    continue
                if (f.operation is None and operation is None and f.method == method) or (
                        f.operation is not None and f.operation == operation):
                    if f.times > 0:
                        f.times -= 1
                    self.faults_fired.append((f.kind, operation or method, key))
                    return f
        return None


def _key_id(k: str | None) -> str | None:
    return k.rsplit("key/", 1)[-1] if k and ":key/" in k else k


def _xml_error(code: str, message: str, **extra: str) -> bytes:
    parts = "".join(f"<{k}>{v}</{k}>" for k, v in extra.items())
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            f"{parts}<RequestId>proxy</RequestId></Error>").encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms delayed-ACK stalls
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._handle()

    do_PUT = do_POST = do_HEAD = do_DELETE = do_GET

    # --- plumbing

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status: int, body: bytes = b"", headers: list[tuple[str, str]] | None = None,
              content_length: int | None = None, cut_at: int | None = None) -> None:
        self.send_response(status)
        for k, v in headers or []:
            self.send_header(k, v)
        self.send_header("Content-Length", str(content_length if content_length is not None else len(body)))
        if cut_at is not None:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body if cut_at is None else body[:cut_at])
        if cut_at is not None:
            self.wfile.flush()
            self.close_connection = True

    def _forward(self, body: bytes, headers: dict[str, str] | None = None,
                 path: str | None = None) -> tuple[int, list[tuple[str, str]], bytes]:
        host, port = self.server.upstream
        hdrs = {k: v for k, v in (headers if headers is not None else dict(self.headers.items())).items()
                if k.lower() not in _HOP}
        hdrs["Host"] = f"{host}:{port}"
        if body or self.command in ("PUT", "POST"):
            hdrs["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection(host, port, timeout=60)
        try:
            conn.request(self.command, path or self.path, body=body or None, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            out = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP]
            if self.command == "HEAD":
                cl = resp.getheader("Content-Length")
                if cl is not None:
                    out.append(("X-Proxy-Head-Length", cl))
            return resp.status, out, data
        finally:
            conn.close()

    def _relay(self, status: int, headers: list[tuple[str, str]], data: bytes,
               cut_at: int | None = None) -> None:
        length = None
        if self.command == "HEAD":
            length = int(next((v for k, v in headers if k == "X-Proxy-Head-Length"), "0"))
            headers = [(k, v) for k, v in headers if k != "X-Proxy-Head-Length"]
        self._send(status, data, headers, content_length=length, cut_at=cut_at)

    def _json(self, status: int, doc: dict[str, Any]) -> None:
        self._send(status, json.dumps(doc).encode(), [("Content-Type", "application/x-amz-json-1.1"),
                                                      ("x-amzn-RequestId", "proxy")])

    # --- dispatch

    def _handle(self) -> None:
        state: ProxyState = self.server.state
        body = self._read_body()
        m = _CRED.search(self.headers.get("Authorization", ""))
        access_key, region, service = (m.group(1), m.group(2), m.group(3)) if m else ("", "", "")
        target = self.headers.get("X-Amz-Target", "")
        op = target.rsplit(".", 1)[-1] if target else self.command
        if access_key in state.rejected_access_keys:
            if service == "s3":
                return self._send(403, _xml_error("InvalidAccessKeyId", "The AWS Access Key Id you provided does "
                                                  "not exist in our records."), [("Content-Type", "application/xml")])
            return self._json(400, {"__type": "UnrecognizedClientException",
                                    "message": "The security token included in the request is invalid."})
        if service == "s3":
            if self.command == "GET" and "/" in urlsplit(self.path).path.lstrip("/"):
                with state.lock:
                    state.object_gets[access_key] = state.object_gets.get(access_key, 0) + 1
            return self._s3(state, region, body)
        with state.lock:
            state.calls.append((service, op, region, ""))
            denied = op in state.denied_operations
        if denied:
            return self._json(400, {"__type": "AccessDeniedException", "message": f"User: arn:aws:iam::{state.account}"
                                    f":user/auditor is not authorized to perform: {service}:{op}"})
        fault = state.take_fault(self.command, "", operation=op)
        if fault is not None and self._fault_before(fault, json_api=True):
            return
        if service == "cloudtrail" and op == "ListPublicKeys":
            return self._list_public_keys(state, region, body)
        if service == "cloudtrail" and op == "GetTrailStatus":
            return self._get_trail_status(state, body)
        self._relay(*self._forward(body))

    # --- CloudTrail

    def _list_public_keys(self, state: ProxyState, region: str, body: bytes) -> None:
        req = json.loads(body or b"{}")
        start = float(req.get("StartTime", time.time()))
        end = float(req.get("EndTime", time.time()))
        with state.lock:
            entries = list(state.public_keys.get(region, []))
            page = max(1, state.key_page_size)
        keys = []
        for e in entries:
            vf = parse_time(e["ValidityStartTime"]).timestamp()
            vt = parse_time(e["ValidityEndTime"]).timestamp()
            if vf <= end and vt >= start:  # validity overlaps the asked range
                keys.append({"Value": e["Value"], "ValidityStartTime": vf, "ValidityEndTime": vt,
                             "Fingerprint": e["Fingerprint"]})
        offset = int(req.get("NextToken") or 0)
        doc: dict[str, Any] = {"PublicKeyList": keys[offset:offset + page]}
        if offset + page < len(keys):
            doc["NextToken"] = str(offset + page)
        self._json(200, doc)

    def _get_trail_status(self, state: ProxyState, body: bytes) -> None:
        name = json.loads(body or b"{}").get("Name", "")
        with state.lock:
            overlay = state.trail_status.get(name) or state.trail_status.get(name.rsplit("/", 1)[-1])
        status, headers, data = self._forward(body)
        if overlay is None:
            return self._relay(status, headers, data)
        doc = json.loads(data) if status == 200 else {}
        doc.update({k: v for k, v in overlay.items() if v is not None})
        self._json(200, doc)

    # --- S3

    def _s3(self, state: ProxyState, region: str, body: bytes) -> None:
        parts = urlsplit(self.path)
        segs = parts.path.lstrip("/").split("/", 1)
        bucket = unquote(segs[0])
        key = unquote(segs[1]) if len(segs) > 1 else ""
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if key:
            op = {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject", "DELETE": "DeleteObject"}.get(
                self.command, self.command)
            if op == "PutObject" and "x-amz-copy-source" in self.headers:
                op = "CopyObject"
        elif self.command == "GET" and "list-type" in query:
            op = "ListObjectsV2"
        elif self.command == "GET" and "versions" in query:
            op = "ListObjectVersions"
        elif self.command == "GET" and "location" in query:
            op = "GetBucketLocation"
        elif self.command == "GET" and "encryption" in query:
            op = "GetBucketEncryption"
        else:
            op = f"{self.command} bucket"
        with state.lock:
            state.calls.append(("s3", op, region, f"{bucket}/{key}"))

        if op in ("ListObjectsV2", "ListObjectVersions") or not key:
            fault = state.take_fault(self.command, query.get("prefix", ""), operation=op)
            if fault is not None and self._fault_before(fault, json_api=False):
                return
        if op in ("ListObjectsV2", "ListObjectVersions"):
            prefix = query.get("prefix", "")
            if bucket in state.denied_list_buckets or (op == "ListObjectVersions" and bucket in
                                                       state.denied_version_listing) or any(
                    b == bucket and prefix.startswith(p) for b, p in state.denied_list_prefixes):
                return self._send(403, _xml_error("AccessDenied", "Access Denied"),
                                  [("Content-Type", "application/xml")])
            path = self.path
            if state.list_page_size:
                query["max-keys"] = str(min(int(query.get("max-keys", 1000)), state.list_page_size))
                path = parts.path + "?" + urlencode(query)
            status, headers, data = self._forward(body, path=path)
            if op == "ListObjectVersions" and status == 200:
                data = _pin_version_times(state, bucket, data)
            return self._relay(status, headers, data)

        if not key:
            if (bucket, op) in state.denied_bucket_ops:
                return self._send(403, _xml_error("AccessDenied", "Access Denied"),
                                  [("Content-Type", "application/xml")])
            return self._relay(*self._forward(body))

        fault = state.take_fault(self.command, key) or state.take_fault(self.command, key, operation=op)
        if fault is not None and self._fault_before(fault, json_api=False):
            return

        ref = (bucket, key)
        if op in ("PutObject", "CopyObject"):
            alg = self.headers.get("x-amz-server-side-encryption-customer-algorithm")
            with state.lock:
                if alg:
                    state.sse_c[ref] = alg
                else:
                    state.sse_c.pop(ref, None)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _SSE_C_HEADERS}
            with state.lock:
                state.write_times.pop((bucket, key, None), None)  # unversioned: the pinned object is gone
            return self._relay(*self._forward(body, headers=headers))
        if op == "DeleteObject":
            with state.lock:
                state.sse_c.pop(ref, None)
                if "versionId" not in query:
                    state.write_times.pop((bucket, key, None), None)
            return self._relay(*self._forward(body))

        if ref in state.denied_objects:
            return self._send(403, _xml_error("AccessDenied", "Access Denied"), [("Content-Type", "application/xml")])
        sse_c = state.sse_c.get(ref)
        if sse_c is not None and not self.headers.get("x-amz-server-side-encryption-customer-key"):
            if self.command == "HEAD":
                return self._send(400)
            return self._send(400, _xml_error("InvalidRequest", SSE_C_MESSAGE), [("Content-Type", "application/xml")])

        status, headers, data = self._forward(body)
        if status in (200, 206):
            headers = _pin_header_time(state, bucket, key, headers)
        if sse_c is not None:
            headers.append(("x-amz-server-side-encryption-customer-algorithm", sse_c))
        if op == "GetObject" and status in (200, 206):
            kms = dict((k.lower(), v) for k, v in headers).get("x-amz-server-side-encryption-aws-kms-key-id")
            with state.lock:
                denied = {_key_id(k) for k in state.denied_kms_keys}
            if kms and _key_id(kms) in denied:
                message = KMS_MESSAGES[state.kms_message].format(account=state.account)
                return self._send(403, _xml_error("AccessDenied", message),
                                  [("Content-Type", "application/xml")])
        if fault is not None and fault.kind in BODY_KINDS and op == "GetObject" and status in (200, 206):
            return self._faulty_body(fault, status, headers, data)
        self._relay(status, headers, data)

    # --- faults

    def _fault_before(self, fault: Fault, json_api: bool) -> bool:
        """Answer a request as `fault` says, instead of forwarding it. False: forward it after all."""
        if fault.kind == "delay":
            time.sleep(fault.delay)
            return False
        if fault.kind == "throttle":
            if json_api:
                self._json(400, {"__type": "ThrottlingException", "message": "Rate exceeded"})
            else:
                self._send(503, _xml_error("SlowDown", "Please reduce your request rate."),
                           [("Content-Type", "application/xml")])
            return True
        if fault.kind == "error500":
            if json_api:
                self._json(500, {"__type": "InternalFailure", "message": "An internal error occurred."})
            else:
                self._send(500, _xml_error("InternalError", "We encountered an internal error."),
                           [("Content-Type", "application/xml")])
            return True
        if fault.kind == "reset":
            self._reset()
            return True
        return False  # a body fault: applied to the answer

    def _reset(self) -> None:
        """Abort the connection with a TCP reset (SO_LINGER 0), not an orderly close."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def _faulty_body(self, fault: Fault, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
        half = max(1, len(data) // 2)
        if fault.kind == "truncate":
            return self._relay(status, headers, data, cut_at=half)
        if fault.kind == "corrupt":
            body = bytearray(data)
            body[half - 1] ^= 0x20
            return self._relay(status, headers, bytes(body))
        if fault.kind == "long_body":
            self._send(status, data + b"JUNK" * 1024, headers, content_length=len(data))
            return
        if fault.kind == "short_length":
            return self._send(status, data[:half], headers)
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if fault.kind == "slow":
            step = max(1, -(-len(data) // 16))
            for i in range(0, len(data), step):
                self.wfile.write(data[i:i + step])
                self.wfile.flush()
                time.sleep(fault.delay or 0.05)
            return
        self.wfile.write(data[:half])
        self.wfile.flush()
        if fault.kind == "stall":
            time.sleep(fault.delay or 30)
            self.close_connection = True
            return
        self._reset()  # reset_body


def _version_of(value: str | None) -> str | None:
    return None if value in (None, "", "null") else value


def _pin_header_time(state: ProxyState, bucket: str, key: str,
                     headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """GET/HEAD: the pinned write time of this object version as its Last-Modified."""
    vid = _version_of(next((v for k, v in headers if k.lower() == "x-amz-version-id"), None))
    with state.lock:
        pinned = state.write_times.get((bucket, key, vid))
    if pinned is None:
        return headers
    return [(k, format_datetime(pinned.astimezone(timezone.utc), usegmt=True) if k.lower() == "last-modified" else v)
            for k, v in headers]


_VERSION_ENTRY = re.compile(rb"<(Version|DeleteMarker)>(.*?)</\1>", re.S)


def _pin_version_times(state: ProxyState, bucket: str, data: bytes) -> bytes:
    """ListObjectVersions: the pinned write times in the <LastModified> of each version."""
    def one(m: re.Match[bytes]) -> bytes:
        inner = m.group(2)
        key = re.search(rb"<Key>(.*?)</Key>", inner, re.S)
        vid = re.search(rb"<VersionId>(.*?)</VersionId>", inner, re.S)
        if key is None:
            return m.group(0)
        from html import unescape
        ref = (bucket, unescape(key.group(1).decode()), _version_of(vid.group(1).decode() if vid else None))
        with state.lock:
            pinned = state.write_times.get(ref)
        if pinned is None:
            return m.group(0)
        text = pinned.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z").encode()
        inner = re.sub(rb"<LastModified>.*?</LastModified>", b"<LastModified>" + text + b"</LastModified>", inner)
        return b"<" + m.group(1) + b">" + inner + b"</" + m.group(1) + b">"
    return _VERSION_ENTRY.sub(one, data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], upstream: tuple[str, int], state: ProxyState):
        super().__init__(addr, _Handler)
        self.upstream = upstream
        self.state = state

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a connection the proxy aborted on purpose must not print into the CLI's captured stderr."""


class AwsProxy:
    """Run the proxy on a free loopback port, forwarding to `upstream` (moto)."""

    def __init__(self, upstream_url: str, state: ProxyState | None = None):
        u = urlsplit(upstream_url)
        self.state = state or ProxyState()
        self._server = _Server(("127.0.0.1", 0), (u.hostname or "127.0.0.1", u.port or 80), self.state)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="aws-proxy", daemon=True)

    def start(self) -> "AwsProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
