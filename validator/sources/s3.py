"""Live S3 (and CloudTrail, Organizations, KMS) through boto3.

All AWS I/O of a live run happens here; the pipeline sees only the Source
interface and the errors of :mod:`validator.errors`. What this module decides:

- one boto3 session (standard credential chain, `--profile`), one client per
  service and region, created under a lock and cached (clients are thread-safe,
  sessions are not);
- `--endpoint-url` for every service when given; otherwise botocore's own
  `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` handling is left alone;
- request retries are botocore's ("adaptive" mode); a body that breaks
  mid-stream is a TransportError, and the pipeline restarts the whole read;
- every socket operation has a bounded timeout (connect 10 s, read 60 s; the
  environment variables CTV_CONNECT_TIMEOUT / CTV_READ_TIMEOUT change them): a
  stalled response or body ends as a TransportError, never a hang;
- a body is checked against what S3 itself says of it: its Content-Length and,
  where S3's ETag is the MD5 of the stored bytes (single-part, SSE-S3 or
  unencrypted), its MD5. A body that disagrees was damaged on the way, not in
  the bucket (S3 computes the ETag of what it stores; a writer cannot choose
  it), so it is a TransportError, retried, never a verdict on the object;
- each bucket's region is found once (GetBucketLocation, falling back to
  HeadBucket's `x-amz-bucket-region`), and objects are read through a client of
  that region;
- an object's metadata comes from the GET response itself (no HEAD per object);
- every botocore failure becomes one of the package's error types, so that an
  attacker's rewrite (SSE-C, a foreign KMS key) and an outage never look alike.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Iterator

import boto3
from botocore.config import Config
from botocore.exceptions import (BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError,
                                 NoRegionError, PartialCredentialsError, ProfileNotFound)

from ..core.keys import KeyRing, parse_public_key
from ..errors import (AccessDeniedError, ArchivedError, ConfigError, FormatError, KmsAccessDeniedError,
                      ListingError, NotFoundError, SourceError, TransportError)
from ..model import BucketEncryption, ObjectMeta, ObjectRef, TrailArn, format_time
from .base import CHUNK, BucketProtection, ListedObject, ObjectStream, ObjectVersion, Source, TrailInfo, keys_until

try:  # urllib3 is botocore's transport; its errors can surface from a body read
    from urllib3.exceptions import HTTPError as _Urllib3Error
except ImportError:  # pragma: no cover
    _Urllib3Error = OSError  # type: ignore[misc,assignment]

UTC = timezone.utc
DEFAULT_MAX_ATTEMPTS = 8
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 60
EXTRA_CONNECTIONS = 8
RANGE_MARGIN = 32  # keys a ranged listing asks for beyond those expected (strays, log files no digest lists)
#: ListPublicKeys with no start: a time before CloudTrail log file validation existed (Nov 2015)
KEYS_EPOCH = datetime(2015, 1, 1, tzinfo=UTC)

_NO_CREDENTIALS = ("no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, configure a profile "
                   "(--profile), or run where an instance or SSO role is available")

#: errors that mean "the bytes did not arrive", wherever they surface
_STREAM_ERRORS = (BotoCoreError, _Urllib3Error, http.client.HTTPException, OSError)
_THROTTLING = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException",
               "RequestTimeout", "RequestTimeTooSkewed", "ServiceUnavailable", "InternalError",
               "RequestThrottled", "ProvisionedThroughputExceededException"}
_NOT_FOUND = {"NoSuchKey", "404", "NotFound", "NoSuchVersion"}
_BAD_CREDENTIALS = {"UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException",
                    "InvalidAccessKeyId", "SignatureDoesNotMatch", "AuthFailure", "InvalidSignatureException",
                    "IncompleteSignature", "InvalidToken"}
_MD5_ETAG = re.compile(r"[0-9a-f]{32}")
_KMS_ARN = re.compile(r"arn:aws[a-z\-]*:kms:[a-z0-9\-]+:\d{12}:key/[A-Za-z0-9\-]+")
_KMS_WORDS = re.compile(r"\bkms\b|kms:|customer master key|ciphertext|KMS key", re.IGNORECASE)
_SSE_C_WORDS = re.compile(r"server side encryption|customer|SSE-C|encryption key", re.IGNORECASE)


def _error_parts(exc: ClientError) -> tuple[str, str, int]:
    err = exc.response.get("Error") or {}
    status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0
    return str(err.get("Code") or ""), str(err.get("Message") or ""), int(status)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        code, msg, status = _error_parts(exc)
        return f"{code or status}: {msg}" if msg else (code or str(status))
    return f"{type(exc).__name__}: {exc}"


def _utc(dt: Any) -> datetime | None:
    if isinstance(dt, datetime):
        return dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)
    return None


def _strip_etag(etag: Any) -> str | None:
    return etag.strip('"') if isinstance(etag, str) else None


def md5_etag(meta: ObjectMeta) -> str | None:
    """The MD5 that S3's ETag promises for the body, where it promises one.

    S3's ETag is the MD5 of the object's bytes only for single-part objects stored unencrypted or with
    SSE-S3; SSE-KMS, DSSE-KMS and SSE-C ETags are not, and a multipart ETag has a `-N` suffix.
    """
    etag = (meta.etag or "").lower()
    if meta.sse not in (None, "AES256") or meta.sse_customer_algorithm or not _MD5_ETAG.fullmatch(etag):
        return None
    return etag


def meta_from_response(ref: ObjectRef, resp: dict[str, Any]) -> ObjectMeta:
    """ObjectMeta from a GetObject or HeadObject response (the same fields in both)."""
    md = resp.get("Metadata") or {}
    return ObjectMeta(
        ref=ref,
        size=resp.get("ContentLength") if isinstance(resp.get("ContentLength"), int) else None,
        etag=_strip_etag(resp.get("ETag")),
        version_id=resp.get("VersionId"),
        last_modified=_utc(resp.get("LastModified")),
        storage_class=resp.get("StorageClass") or "STANDARD",  # S3 omits the header for STANDARD
        sse=resp.get("ServerSideEncryption"),
        kms_key_id=resp.get("SSEKMSKeyId"),
        sse_customer_algorithm=resp.get("SSECustomerAlgorithm"),
        metadata={str(k).lower().removeprefix("x-amz-meta-"): str(v) for k, v in md.items()},
        lock_mode=resp.get("ObjectLockMode") if isinstance(resp.get("ObjectLockMode"), str) else None,
        lock_until=_utc(resp.get("ObjectLockRetainUntilDate")),
        legal_hold=resp.get("ObjectLockLegalHoldStatus") if isinstance(resp.get("ObjectLockLegalHoldStatus"), str)
        else None,
    )


class S3Stream(ObjectStream):
    """A GetObject body, read in CHUNK pieces.

    A broken body, one shorter or longer than its Content-Length, or one whose MD5 is not the ETag S3
    vouches for, is a TransportError: the bytes were damaged on the way, and the pipeline reads again.
    """

    def __init__(self, ref: ObjectRef, meta: ObjectMeta, body: Any):
        self.meta = meta
        self._ref = ref
        self._body = body
        self._md5_expected = md5_etag(meta)
        self._md5 = hashlib.md5(usedforsecurity=False) if self._md5_expected else None
        self._n = 0
        self._done = False

    def _raw_chunks(self) -> Iterator[bytes]:
        try:
            for chunk in self._body.iter_chunks(CHUNK):
                self._n += len(chunk)
                if self._md5 is not None:
                    self._md5.update(chunk)
                yield chunk
        except (NoCredentialsError, PartialCredentialsError):
            raise ConfigError(_NO_CREDENTIALS) from None
        except _STREAM_ERRORS as exc:
            raise TransportError(f"the body broke off after {self._n} bytes ({_describe(exc)})") from None
        self._done = True
        self._check_complete()

    def chunks(self) -> Iterator[bytes]:
        yield from self._raw_chunks()

    def _check_complete(self) -> None:
        expected = self.meta.size
        if expected is not None and self._n != expected:
            raise TransportError(f"got {self._n} bytes of {expected}")
        if self._md5 is not None and self._md5.hexdigest() != self._md5_expected:
            raise TransportError(f"the body's MD5 {self._md5.hexdigest()} is not its ETag {self._md5_expected}: "
                                 "damaged on the way")

    def verify_rest(self) -> None:
        """After the content was refused mid-stream: read the rest, and raise TransportError when the body
        S3 sent is not the object S3 stores (so that a transport fault is never taken for tampering)."""
        if self._done:
            return
        for _ in self._raw_chunks():
            pass

    def close(self) -> None:
        try:
            self._body.close()
        except Exception:  # closing a broken connection must not mask the first error
            pass


class S3Source(Source):
    key_origin = "aws"
    original_write_times = True

    def __init__(self, session: boto3.Session, endpoint_url: str | None, default_region: str, workers: int):
        self._session = session
        self._endpoint_url = endpoint_url
        self._default_region = default_region
        retries: dict[str, Any] = {
            "mode": os.environ.get("AWS_RETRY_MODE") or "adaptive",
            "max_attempts": _env_int("AWS_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS),
        }
        s3_opts = {"addressing_style": "path"} if endpoint_url else None  # emulators serve path-style
        # one connection per worker, and some for the listings and group threads that run alongside them
        # (pipeline.GROUP_LOOKAHEAD): urllib3 opens, then discards, connections beyond the pool
        self._config = Config(retries=retries, max_pool_connections=max(10, workers + EXTRA_CONNECTIONS),
                              connect_timeout=_env_float("CTV_CONNECT_TIMEOUT", CONNECT_TIMEOUT),
                              read_timeout=_env_float("CTV_READ_TIMEOUT", READ_TIMEOUT), s3=s3_opts,
                              user_agent_extra="ctvalidate")
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str], Any] = {}
        self._bucket_regions: dict[str, str] = {}
        self._bucket_encryption: dict[str, BucketEncryption] = {}  # asked once per bucket (trail_info, inspect)
        self._region_configured = True  # False: the trail's home region becomes the client region
        self._sse_c: set[ObjectRef] = set()  # objects a GET found to be SSE-C, for head()
        self.problems: list[str] = []  # printed as warnings by the app
        self.public_key_entries: dict[str, list[dict[str, Any]]] = {}  # region -> raw entries, CLI shape

    @classmethod
    def create(cls, endpoint_url: str | None = None, region: str | None = None, profile: str | None = None,
               workers: int = 16) -> "S3Source":
        try:
            session = boto3.Session(profile_name=profile, region_name=region)
        except ProfileNotFound as exc:
            raise ConfigError(f"AWS profile not found: {exc}") from None
        except BotoCoreError as exc:
            raise ConfigError(f"AWS configuration error: {exc}") from None
        try:
            creds = session.get_credentials()
        except BotoCoreError as exc:
            raise ConfigError(f"cannot load AWS credentials: {exc}") from None
        if creds is None:
            raise ConfigError(_NO_CREDENTIALS)
        source = cls(session, endpoint_url, region or session.region_name or "us-east-1", workers)
        source._region_configured = bool(region or session.region_name)
        return source

    def settings(self) -> dict[str, str | None]:
        """What another process needs to open the same storage with its own credentials (never secrets)."""
        return {"endpoint_url": self._endpoint_url, "region": self._default_region}

    # --- clients ---------------------------------------------------------------------

    def _client(self, service: str, region: str | None = None) -> Any:
        region = region or self._default_region
        key = (service, region)
        client = self._clients.get(key)
        if client is not None:
            return client
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                kwargs: dict[str, Any] = {"region_name": region, "config": self._config}
                if self._endpoint_url:
                    kwargs["endpoint_url"] = self._endpoint_url
                try:
                    client = self._session.client(service, **kwargs)
                except (NoRegionError, ValueError, BotoCoreError) as exc:
                    raise ConfigError(f"cannot create a {service} client for {region}: {exc}") from None
                self._clients[key] = client
        return client

    def bucket_region(self, bucket: str) -> str:
        """The bucket's region: GetBucketLocation, else HeadBucket's header, else the client region."""
        region = self._bucket_regions.get(bucket)
        if region is not None:
            return region
        client = self._client("s3")
        region = None
        try:
            loc = client.get_bucket_location(Bucket=bucket).get("LocationConstraint")
            region = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(loc, loc)
        except (NoCredentialsError, PartialCredentialsError):
            raise ConfigError(_NO_CREDENTIALS) from None
        except ClientError as exc:
            code, _, _ = _error_parts(exc)
            if code == "NoSuchBucket":
                region = self._default_region  # the real call reports it
            else:
                region = self._region_from_head_bucket(bucket, exc)
        except BotoCoreError:
            region = None  # transport trouble: do not cache a guess
        if region is None:
            return self._default_region
        with self._lock:
            self._bucket_regions[bucket] = region
        return region

    def _region_from_head_bucket(self, bucket: str, first: ClientError) -> str | None:
        hdrs = (first.response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
        if hdrs.get("x-amz-bucket-region"):
            return hdrs["x-amz-bucket-region"]
        try:
            resp = self._client("s3").head_bucket(Bucket=bucket)
            hdrs = (resp.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
        except ClientError as exc:
            hdrs = (exc.response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
        except BotoCoreError:
            return None
        return hdrs.get("x-amz-bucket-region") or self._default_region

    def _s3(self, bucket: str) -> Any:
        return self._client("s3", self.bucket_region(bucket))

    # --- listing -----------------------------------------------------------------------

    def list(self, bucket: str, prefix: str, start_after: str | None = None,
             first_page: int | None = None) -> Iterator[ListedObject]:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if start_after:
            kwargs["StartAfter"] = start_after
        if first_page is not None:
            kwargs["MaxKeys"] = max(1, min(1000, first_page))
        token: str | None = None
        while True:
            if token:
                kwargs["ContinuationToken"] = token
            resp = self._list_call(bucket, prefix, kwargs)
            kwargs.pop("MaxKeys", None)  # the pages after the first: S3's own size (1,000)
            for c in resp.get("Contents") or ():
                key = c.get("Key")
                if not isinstance(key, str):
                    continue
                yield ListedObject(ObjectRef(bucket, key), size=c.get("Size"), etag=_strip_etag(c.get("ETag")),
                                   last_modified=_utc(c.get("LastModified")), storage_class=c.get("StorageClass"))
            token = resp.get("NextContinuationToken") if resp.get("IsTruncated") else None
            if not token:
                return

    def list_range(self, bucket: str, prefix: str, after: str, until: str,
                   expected: int | None = None) -> Iterator[ListedObject]:
        """One day of a log folder: its first page sized to what the day's digests list (and a margin), so
        that a day's listing does not fetch and parse the 1,000 keys of the days after it."""
        first = expected + RANGE_MARGIN if expected is not None else None
        return keys_until(self.list(bucket, prefix, after, first_page=first), until)

    def list_folders(self, bucket: str, prefix: str) -> list[str]:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "Delimiter": "/"}
        out: list[str] = []
        token: str | None = None
        while True:
            if token:
                kwargs["ContinuationToken"] = token
            resp = self._list_call(bucket, prefix, kwargs)
            for cp in resp.get("CommonPrefixes") or ():
                p = cp.get("Prefix")
                if isinstance(p, str) and p.startswith(prefix) and p.endswith("/"):
                    out.append(p[len(prefix):-1])
            token = resp.get("NextContinuationToken") if resp.get("IsTruncated") else None
            if not token:
                return out

    def _list_call(self, bucket: str, prefix: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        where = f"s3://{bucket}/{prefix}"
        try:
            return self._s3(bucket).list_objects_v2(**kwargs)
        except (NoCredentialsError, PartialCredentialsError):
            raise ConfigError(_NO_CREDENTIALS) from None
        except ClientError as exc:
            code, msg, status = _error_parts(exc)
            if code in _BAD_CREDENTIALS:
                raise ConfigError(f"AWS refused the credentials: {_describe(exc)}") from None
            if code == "NoSuchBucket":
                raise ListingError(f"cannot list {where}: bucket {bucket} does not exist") from None
            if status == 403 or code in ("AccessDenied", "AllAccessDisabled"):
                raise ListingError(f"cannot list {where}: access denied (s3:ListBucket is needed): "
                                   f"{msg or code}") from None
            raise ListingError(f"cannot list {where}: {_describe(exc)}") from None
        except BotoCoreError as exc:
            raise ListingError(f"cannot list {where}: {_describe(exc)}") from None

    # --- history: versioning, Object Lock, versions -----------------------------------------

    def bucket_protection(self, bucket: str) -> BucketProtection | None:
        """GetBucketVersioning and GetObjectLockConfiguration; None (with a problem noted) when refused."""
        s3 = self._s3(bucket)
        try:
            status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
        except (ClientError, BotoCoreError) as exc:
            self.problems.append(f"GetBucketVersioning on {bucket} failed ({_describe(exc)}): overwritten and "
                                 "deleted objects are not looked for in the bucket's versions")
            return None
        lock: dict[str, Any] = {}
        try:
            lock = s3.get_object_lock_configuration(Bucket=bucket).get("ObjectLockConfiguration") or {}
        except ClientError as exc:
            if _error_parts(exc)[0] != "ObjectLockConfigurationNotFoundError":
                self.problems.append(f"GetObjectLockConfiguration on {bucket} failed ({_describe(exc)})")
        except BotoCoreError as exc:
            self.problems.append(f"GetObjectLockConfiguration on {bucket} failed ({_describe(exc)})")
        default = (lock.get("Rule") or {}).get("DefaultRetention") or {}
        return BucketProtection.from_json({
            "versioning": status, "object_lock": lock.get("ObjectLockEnabled") == "Enabled",
            "mode": default.get("Mode"), "days": default.get("Days") or None, "years": default.get("Years") or None})

    def list_versions(self, bucket: str, prefix: str, key_marker: str | None = None) -> Iterator[ObjectVersion]:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if key_marker:
            kwargs["KeyMarker"] = key_marker
        where = f"s3://{bucket}/{prefix}"
        while True:
            try:
                resp = self._s3(bucket).list_object_versions(**kwargs)
            except (NoCredentialsError, PartialCredentialsError):
                raise ConfigError(_NO_CREDENTIALS) from None
            except (ClientError, BotoCoreError) as exc:
                raise ListingError(f"cannot list the versions of {where}: {_describe(exc)}") from None
            page = [(v, False) for v in resp.get("Versions") or ()] + [(m, True) for m in resp.get("DeleteMarkers") or ()]
            entries = []
            for v, marker in page:
                key, vid = v.get("Key"), v.get("VersionId")
                if not isinstance(key, str) or not isinstance(vid, str) or not key.startswith(prefix):
                    continue
                entries.append(ObjectVersion(ObjectRef(bucket, key), vid, bool(v.get("IsLatest")), marker,
                                             _utc(v.get("LastModified")), v.get("Size") if not marker else None,
                                             _strip_etag(v.get("ETag"))))
            # S3 lists a key's versions newest first; the two lists boto3 splits them into are merged back
            epoch = datetime.min.replace(tzinfo=UTC)
            entries.sort(key=lambda e: (e.ref.key, not e.is_latest, -(e.last_modified or epoch).timestamp()))
            yield from entries
            if not resp.get("IsTruncated"):
                return
            nk, nv = resp.get("NextKeyMarker"), resp.get("NextVersionIdMarker")
            if not nk or (nk, nv) == (kwargs.get("KeyMarker"), kwargs.get("VersionIdMarker")):
                return
            kwargs["KeyMarker"] = nk
            if nv:
                kwargs["VersionIdMarker"] = nv
            else:
                kwargs.pop("VersionIdMarker", None)

    def open_version(self, ref: ObjectRef, version_id: str) -> ObjectStream:
        return self.open(ref, version_id)

    # --- objects --------------------------------------------------------------------------

    def open(self, ref: ObjectRef, version_id: str | None = None) -> ObjectStream:
        extra = {"VersionId": version_id} if version_id else {}
        try:
            resp = self._s3(ref.bucket).get_object(Bucket=ref.bucket, Key=ref.key, **extra)
        except (NoCredentialsError, PartialCredentialsError):
            raise ConfigError(_NO_CREDENTIALS) from None
        except ClientError as exc:
            raise self._object_error(ref, exc, head=False) from None
        except BotoCoreError as exc:
            raise TransportError(_describe(exc)) from None
        return S3Stream(ref, meta_from_response(ref, resp), resp["Body"])

    def head(self, ref: ObjectRef) -> ObjectMeta:
        try:
            resp = self._s3(ref.bucket).head_object(Bucket=ref.bucket, Key=ref.key)
        except (NoCredentialsError, PartialCredentialsError):
            raise ConfigError(_NO_CREDENTIALS) from None
        except ClientError as exc:
            code, _, status = _error_parts(exc)
            if status == 400 and self._is_sse_c(ref):
                # S3 refuses HEAD of an SSE-C object without the key (400, no body): that refusal is the metadata
                return ObjectMeta(ref=ref, sse_customer_algorithm="AES256")
            raise self._object_error(ref, exc, head=True) from None
        except BotoCoreError as exc:
            raise TransportError(_describe(exc)) from None
        return meta_from_response(ref, resp)

    def _is_sse_c(self, ref: ObjectRef) -> bool:
        """Whether a GET of `ref` is refused for want of a customer key (remembered, or asked with a 1-byte GET)."""
        if ref in self._sse_c:
            return True
        try:
            self._s3(ref.bucket).get_object(Bucket=ref.bucket, Key=ref.key, Range="bytes=0-0")["Body"].close()
        except ClientError as exc:
            code, msg, status = _error_parts(exc)
            if status == 400 and (code == "InvalidRequest" or _SSE_C_WORDS.search(msg)):
                with self._lock:
                    self._sse_c.add(ref)
                return True
        except BotoCoreError:
            pass
        return False

    def _object_error(self, ref: ObjectRef, exc: ClientError, head: bool) -> SourceError | ConfigError:
        """Map a GetObject/HeadObject refusal to the package's errors (the reason codes of the contract).

        Refused credentials are a configuration error, as for listings: they say nothing of the object
        (a Dask worker with bad credentials of its own meets them here first)."""
        code, msg, status = _error_parts(exc)
        what = f"{code or status}" + (f": {msg}" if msg else "")  # records name the object already
        if code in _BAD_CREDENTIALS:
            return ConfigError(f"AWS refused the credentials: {_describe(exc)}")
        if code == "NoSuchBucket":
            return NotFoundError(f"bucket {ref.bucket} does not exist")
        if code in _NOT_FOUND or status == 404:
            return NotFoundError("not found")
        if code == "InvalidObjectState":
            return ArchivedError(f"in an archive storage class; restore it first ({msg or code})")
        if code.startswith("KMS.") or (status in (400, 403) and _KMS_WORDS.search(msg) and not head):
            key_arn = self._kms_key_of(ref, msg)
            return KmsAccessDeniedError(what, key_arn=key_arn)
        if status == 403 or code in ("AccessDenied", "AllAccessDisabled", "403"):
            if not head and code == "AccessDenied":
                # HEAD needs the same s3:GetObject permission as GET, but no kms:Decrypt: when HEAD answers
                # for an SSE-KMS object that GET refuses, what is missing is kms:Decrypt on its key
                key_arn = self._kms_key_if_head_answers(ref)
                if key_arn is not None:
                    return KmsAccessDeniedError(f"{what} (HEAD answers, so kms:Decrypt on {key_arn} is what is "
                                                "missing)", key_arn=key_arn)
            return AccessDeniedError(what)
        if status == 400 and not head and (code == "InvalidRequest" or _SSE_C_WORDS.search(msg)):
            # what S3 answers a GET of an SSE-C object without its key (an existing key, a plain GET)
            with self._lock:
                self._sse_c.add(ref)
            return AccessDeniedError(f"{what} (stored with a customer-provided key, SSE-C)")
        if code in _THROTTLING or status >= 500 or status == 429:
            return TransportError(what)
        return AccessDeniedError(what)

    def _kms_key_if_head_answers(self, ref: ObjectRef) -> str | None:
        try:
            resp = self._s3(ref.bucket).head_object(Bucket=ref.bucket, Key=ref.key)
        except (ClientError, BotoCoreError):
            return None
        if resp.get("ServerSideEncryption") in ("aws:kms", "aws:kms:dsse") and resp.get("SSEKMSKeyId"):
            return resp["SSEKMSKeyId"]
        return None

    def _kms_key_of(self, ref: ObjectRef, message: str) -> str | None:
        """The KMS key of an object S3 could not decrypt: from the message, else from a HEAD (no kms:Decrypt needed)."""
        m = _KMS_ARN.search(message)
        if m:
            return m.group(0)
        try:
            return self._s3(ref.bucket).head_object(Bucket=ref.bucket, Key=ref.key).get("SSEKMSKeyId")
        except (ClientError, BotoCoreError):
            return None

    # --- the trail's configuration and status ------------------------------------------------

    def trail_info(self, arn: TrailArn) -> TrailInfo | None:
        home = arn.home_region
        if not self._region_configured:  # no --region, none configured: stay in the trail's partition
            self._default_region = home
        ct = self._client("cloudtrail", home)
        try:
            trails = ct.describe_trails(trailNameList=[str(arn)], includeShadowTrails=True).get("trailList") or []
        except (NoCredentialsError, PartialCredentialsError):
            raise ConfigError(_NO_CREDENTIALS) from None
        except (ClientError, BotoCoreError) as exc:
            if isinstance(exc, ClientError) and _error_parts(exc)[0] in _BAD_CREDENTIALS:
                raise ConfigError(f"AWS refused the credentials: {_describe(exc)}") from None
            if isinstance(exc, EndpointConnectionError):
                raise ConfigError(f"cannot reach AWS: {exc}") from None
            self.problems.append(f"DescribeTrails for {arn} failed ({_describe(exc)}): the trail's configuration "
                                 "is unknown, so encryption provenance is not checked")
            return None
        trail, note = _match_trail(trails, arn)
        if note:
            self.problems.append(note)
        if trail is None:
            self.problems.append(f"DescribeTrails does not know {arn}: the trail's configuration is unknown")
            return None
        status: dict[str, Any] = {}
        try:
            status = ct.get_trail_status(Name=trail.get("TrailARN") or str(arn))
        except (ClientError, BotoCoreError) as exc:
            self.problems.append(f"GetTrailStatus for {arn} failed ({_describe(exc)}): a cut chain tail "
                                 "cannot be detected")
        bucket = trail.get("S3BucketName")
        is_org = bool(trail.get("IsOrganizationTrail"))
        org_id = self._organization_id() if is_org else None
        kms = trail.get("KmsKeyId")
        if kms:
            kms = self._resolve_kms_key(kms, home)
        raw = {"Trail": trail, "Status": {k: v for k, v in status.items() if k != "ResponseMetadata"}}
        return TrailInfo(
            name=trail.get("Name") or arn.name, home_region=trail.get("HomeRegion") or home,
            account_id=arn.account_id, bucket=bucket, prefix=trail.get("S3KeyPrefix") or "",
            kms_key_id=kms, is_organization_trail=is_org, organization_id=org_id,
            is_multi_region=trail.get("IsMultiRegionTrail"), log_file_validation=trail.get("LogFileValidationEnabled"),
            is_logging=status.get("IsLogging"), latest_digest_delivery=_utc(status.get("LatestDigestDeliveryTime")),
            latest_delivery=_utc(status.get("LatestDeliveryTime")),
            bucket_default_key=self._bucket_default_key(bucket) if bucket else None, raw=raw)

    def _organization_id(self) -> str | None:
        try:
            return self._client("organizations").describe_organization()["Organization"]["Id"]
        except (ClientError, BotoCoreError, KeyError) as exc:
            self.problems.append(f"DescribeOrganization failed ({_describe(exc)}): every organization folder "
                                 "in the bucket is validated")
            return None

    def _bucket_default_key(self, bucket: str) -> str | None:
        return self.bucket_encryption(bucket).kms_key  # unknown or SSE-S3: only messages lose a detail

    def bucket_encryption(self, bucket: str) -> BucketEncryption:
        """The bucket's default encryption (GetBucketEncryption), its KMS key resolved to an ARN where allowed."""
        known = self._bucket_encryption.get(bucket)
        if known is None:
            known = self._bucket_encryption[bucket] = self._get_bucket_encryption(bucket)
        return known

    def _get_bucket_encryption(self, bucket: str) -> BucketEncryption:
        try:
            conf = self._s3(bucket).get_bucket_encryption(Bucket=bucket)
        except (NoCredentialsError, PartialCredentialsError):
            raise ConfigError(_NO_CREDENTIALS) from None
        except ClientError as exc:
            if _error_parts(exc)[0] == "ServerSideEncryptionConfigurationNotFoundError":
                return BucketEncryption(algorithm=None)  # none configured: S3 applies SSE-S3 since January 2023
            return BucketEncryption(error=_describe(exc))
        except BotoCoreError as exc:
            return BucketEncryption(error=_describe(exc))
        for rule in (conf.get("ServerSideEncryptionConfiguration") or {}).get("Rules") or ():
            default = rule.get("ApplyServerSideEncryptionByDefault") or {}
            algorithm = default.get("SSEAlgorithm")
            if algorithm in ("aws:kms", "aws:kms:dsse"):
                configured = default.get("KMSMasterKeyID") or "alias/aws/s3"
                return BucketEncryption(algorithm=algorithm, configured_key=configured,
                                        kms_key=self._resolve_kms_key(configured, self.bucket_region(bucket)))
            if isinstance(algorithm, str):
                return BucketEncryption(algorithm=algorithm)
        return BucketEncryption(algorithm=None)

    def client(self, service: str, region: str | None = None) -> Any:
        """The cached client of `service` in `region` (default: the client region), for callers next to this source."""
        return self._client(service, region)

    def _resolve_kms_key(self, key: str, region: str) -> str:
        """A key ARN for an alias or bare id (S3 reports objects' keys as key ARNs); unchanged when unknown."""
        if ":key/" in key:
            return key
        m = re.match(r"arn:aws[a-z\-]*:kms:([a-z0-9\-]+):", key)
        try:
            return self._client("kms", m.group(1) if m else region).describe_key(KeyId=key)["KeyMetadata"]["Arn"]
        except (ClientError, BotoCoreError, KeyError):
            return key

    # --- public keys ----------------------------------------------------------------------------

    def list_public_key_entries(self, region: str, start: datetime | None, end: datetime) -> list[dict[str, Any]]:
        """ListPublicKeys in one region, as `aws cloudtrail list-public-keys` prints the entries."""
        ct = self._client("cloudtrail", region)
        kwargs: dict[str, Any] = {"StartTime": start or KEYS_EPOCH, "EndTime": end}
        entries: list[dict[str, Any]] = []
        seen_tokens: set[str] = set()
        while True:
            try:
                resp = ct.list_public_keys(**kwargs)
            except (NoCredentialsError, PartialCredentialsError):
                raise ConfigError(_NO_CREDENTIALS) from None
            except (ClientError, BotoCoreError) as exc:
                raise ConfigError(f"ListPublicKeys in {region} failed ({_describe(exc)}); allow "
                                  "cloudtrail:ListPublicKeys or give --public-keys") from None
            for k in resp.get("PublicKeyList") or ():
                value = k.get("Value")
                if isinstance(value, (bytes, bytearray)):
                    value = base64.b64encode(bytes(value)).decode()
                entries.append({"Value": value, "ValidityStartTime": format_time(_utc(k.get("ValidityStartTime"))),
                                "ValidityEndTime": format_time(_utc(k.get("ValidityEndTime"))),
                                "Fingerprint": k.get("Fingerprint")})
            token = resp.get("NextToken")
            if not token or token in seen_tokens:
                return entries
            seen_tokens.add(token)
            kwargs["NextToken"] = token

    def public_keys(self, regions: list[str], start: datetime | None, end: datetime) -> KeyRing:
        ring = KeyRing()
        with ThreadPoolExecutor(max_workers=max(1, min(len(regions), 16))) as pool:  # one call per region, at once
            fetched = list(pool.map(lambda r: self.list_public_key_entries(r, start, end), regions))
        for region, entries in zip(regions, fetched):
            self.public_key_entries[region] = entries
            add_entries(ring, entries, origin=f"ListPublicKeys {region}")
        return ring

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                try:
                    client.close()
                except Exception:
                    pass
            self._clients.clear()


def add_entries(ring: KeyRing, entries: list[dict[str, Any]], origin: str) -> None:
    """Parse `PublicKeyList` entries into `ring`; a key whose fingerprint lies is rejected, not added."""
    for entry in entries:
        try:
            ring.add(parse_public_key(entry, origin=origin))
        except FormatError as exc:
            fp = entry.get("Fingerprint") if isinstance(entry, dict) else None
            if isinstance(fp, str):
                ring.reject(fp, f"the key {origin} returned for it was refused: {exc}")


def _match_trail(trails: list[dict[str, Any]], arn: TrailArn) -> tuple[dict[str, Any] | None, str | None]:
    """The DescribeTrails entry for `arn`, and a note when it matched by name only.

    AWS answers only the trail asked for; some emulators ignore trailNameList and return every trail
    of the account they serve (with their own account id in the ARNs): then the one trail of that
    name and home region is taken, and the note says so.
    """
    for t in trails:
        if t.get("TrailARN") == str(arn):
            return t, None
    same = [t for t in trails if t.get("Name") == arn.name and t.get("HomeRegion") in (None, arn.home_region)]
    if len(same) == 1:
        return same[0], (f"DescribeTrails names the trail {same[0].get('TrailARN') or arn.name}, not {arn}; "
                         "its configuration is used")
    return None, None


def _env_int(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, "")))
    except ValueError:
        return default


def _env_float(name: str, default: float) -> float:
    """A positive number of seconds from the environment (a timeout), else `default`."""
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if 0 < value < 86400 else default
