"""One measurement each, run in a fresh child process (so that its peak RSS is its own).

Every driver returns a dict with `seconds` (wall time of the measured part only: imports, trail
loading and client creation are outside it) and what it processed, so that the parent can turn
it into throughput and check that the run really validated everything.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson

from validator.core.hashing import INFLATER, GunzipSha256
from validator.model import ObjectRef, TrailArn, parse_time
from validator.sources.base import CHUNK

from .memstore import MemoryAws, from_evidence

MEM_ENDPOINT = "http://127.0.0.1:9"  # never contacted: the hooks answer first (an IP: path-style addressing)
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
               "AWS_EC2_METADATA_DISABLED": "true"}


def _rss_now() -> int:
    """Resident set size now, in bytes (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def _info(path: str) -> dict[str, Any]:
    with open(os.path.join(path, "bench-info.json"), "rb") as f:
        return orjson.loads(f.read())


def _window(info: dict[str, Any]) -> tuple[Any, Any]:
    return parse_time(info["start"]), parse_time(info["end"])


def _tally(records: list[Any]) -> dict[str, Any]:
    out: dict[str, dict[str, int]] = {}
    for r in records:
        status = getattr(getattr(r, "verdict", None), "status", "gap")
        out.setdefault(r.kind, {}).setdefault(status, 0)
        out[r.kind][status] += 1
    return out


# --- ctvalidate -----------------------------------------------------------------------------------


def _validate(source: Any, info: dict[str, Any], workers: int) -> dict[str, Any]:
    from validator.pipeline import Validation
    from validator.policy import RunConfig

    start, end = _window(info)
    cfg = RunConfig(trail=TrailArn.parse(info["arn"]), start=start, end=end, workers=workers)
    t0 = time.perf_counter()
    v = Validation(source, cfg, None, None)
    n = {"digest": 0, "log": 0}
    bad = 0
    for r in v.records():
        n[r.kind] = n.get(r.kind, 0) + 1
        if getattr(r, "verdict", None) is not None and r.verdict.status != "valid":
            bad += 1
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "digests": n["digest"], "logs": n["log"], "not_valid": bad,
            "exit_code": v.summary.exit_code}


def ours_evidence(path: str, workers: int) -> dict[str, Any]:
    from validator.sources.evidence import EvidenceSource

    t0 = time.perf_counter()
    source = EvidenceSource(path)
    opened = time.perf_counter() - t0
    out = _validate(source, _info(path), workers)
    out["seconds"] += opened
    return out


def _boto3_session(mem: MemoryAws) -> Any:
    import boto3

    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    mem.install(session.events)
    return session


def _memory(path: str, latency: float, endpoint: str | None) -> tuple[MemoryAws, int]:
    """The trail's store (its S3 objects only when there is no real endpoint) and the RSS it costs."""
    before = _rss_now()
    mem = from_evidence(path, latency=latency, s3=endpoint is None)  # with an endpoint, S3 is the endpoint's
    return mem, max(0, _rss_now() - before)


def ours_s3(path: str, workers: int, latency: float, endpoint: str | None) -> dict[str, Any]:
    from validator.sources.s3 import S3Source

    mem, store_rss = _memory(path, latency, endpoint)
    source = S3Source(_boto3_session(mem), endpoint or MEM_ENDPOINT, "us-east-1", workers)
    out = _validate(source, _info(path), workers)
    out.update(requests=mem.requests, store_rss=store_rss)
    return out


def bare_get(path: str, workers: int, latency: float, endpoint: str | None) -> dict[str, Any]:
    """The request-CPU ceiling: `get_object` + read of every object the validation reads, `workers` at a time,
    with the same client configuration as ctvalidate's S3 source (pool size, retries, path-style)."""
    from validator.sources.s3 import S3Source

    mem, store_rss = _memory(path, latency, endpoint)
    source = S3Source(_boto3_session(mem), endpoint or MEM_ENDPOINT, "us-east-1", workers)
    info = _info(path)
    client = source._s3(info["bucket"])  # the client ctvalidate reads through (bucket region found once)
    keys = info["keys"]

    def get(key: str) -> int:
        body = client.get_object(Bucket=info["bucket"], Key=key)["Body"]
        n = 0
        for chunk in body.iter_chunks(CHUNK):
            n += len(chunk)
        return n

    get(keys[0])  # connection set up
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        total = sum(pool.map(get, keys))
    return {"seconds": time.perf_counter() - t0, "objects": len(keys), "bytes": total, "store_rss": store_rss}


# --- the AWS CLI's validator ---------------------------------------------------------------------------


def awscli(path: str, latency: float, endpoint: str | None) -> dict[str, Any]:
    """`aws cloudtrail validate-logs` as the AWS CLI runs it: its command object, DigestTraverser, S3ClientProvider
    and `_download_log`, on a botocore session set up as the CLI sets it up (blobs and timestamps as on the wire),
    whose endpoint (AWS_ENDPOINT_URL) is moto or the hooked store. The AWS CLI validates one region per run
    (`--region`): it is run once per region of the trail, one after the other."""
    import botocore.session
    from awscli.customizations.cloudtrail.validation import CloudTrailValidateLogs, S3ClientProvider
    from awscli.customizations.scalarparse import add_scalar_parsers
    from awscli.utils import create_nested_client

    mem, store_rss = _memory(path, latency, endpoint)
    os.environ["AWS_ENDPOINT_URL"] = endpoint or MEM_ENDPOINT
    session = botocore.session.get_session()
    add_scalar_parsers(session)
    mem.install(session)
    info = _info(path)
    start, end = _window(info)
    sink = io.StringIO()
    counts = {"digests": 0, "logs": 0, "not_valid": 0}
    seconds = 0.0
    for region in info["regions"]:
        cmd = CloudTrailValidateLogs(session)
        cmd.trail_arn, cmd.is_verbose, cmd.s3_bucket, cmd.s3_prefix, cmd.account_id = (
            info["arn"], False, info["bucket"], None, None)
        cmd.start_time, cmd.end_time = start, end
        t0 = time.perf_counter()
        cmd._source_region = region  # what setup_services does with --region
        cmd.s3_client_provider = S3ClientProvider(session, region)
        cmd.organization_client = create_nested_client(session, "organizations", region_name=region)
        cmd.cloudtrail_client = create_nested_client(session, "cloudtrail", region_name=region)
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            cmd._call()
        seconds += time.perf_counter() - t0
        counts["digests"] += cmd._valid_digests + cmd._invalid_digests
        counts["logs"] += cmd._valid_logs + cmd._invalid_logs
        counts["not_valid"] += cmd._invalid_digests + cmd._invalid_logs
    return {"seconds": seconds, **counts, "requests": mem.requests, "store_rss": store_rss}


# --- CPU ceilings ----------------------------------------------------------------------------------------


def _log_bodies(path: str) -> list[bytes]:
    from validator.sources.evidence import EvidenceSource

    src = EvidenceSource(path)
    info = _info(path)
    out = []
    for key in info["keys"]:
        if "/CloudTrail/" in key:
            with src.open(ObjectRef(info["bucket"], key)) as s:
                out.append(b"".join(s.chunks()))
    return out


def _gunzip_sha(body: bytes, fast: bool = True) -> str:
    h = GunzipSha256(prefer_fast=fast)
    for i in range(0, len(body), CHUNK):
        h.update(body[i:i + CHUNK])
    return h.finish()


def ceiling(path: str, threads: int, repeats: int) -> dict[str, Any]:
    """gunzip + SHA-256 of the trail's log bytes in memory: on every core (threads: inflate and hashlib release
    the GIL), and on one core with the fast inflater and with stdlib zlib."""
    bodies = _log_bodies(path)
    raw = sum(len(zlib.decompress(b, 31)) for b in bodies)
    out: dict[str, Any] = {"inflater": INFLATER, "uncompressed": raw, "files": len(bodies)}

    def timed(fn) -> float:  # a ceiling: the best of the repeats (load only ever slows it down)
        best = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            best.append(time.perf_counter() - t0)
        return min(best)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(_gunzip_sha, bodies[:threads]))
        out["all_cores_seconds"] = timed(lambda: list(pool.map(_gunzip_sha, bodies)))
    out["one_core_seconds"] = timed(lambda: [_gunzip_sha(b) for b in bodies])
    out["one_core_zlib_seconds"] = timed(lambda: [_gunzip_sha(b, fast=False) for b in bodies])
    return out


def digest_verify(path: str, repeats: int) -> dict[str, Any]:
    """Per-digest verification on one core: ctvalidate's check_digest (orjson + cryptography) against the AWS CLI's
    fetch_digest parsing + Sha256RSADigestValidator (json + pure-Python rsa), on the same digest objects."""
    import json

    from awscli.customizations.cloudtrail.validation import Sha256RSADigestValidator

    from validator.core.keys import KeyRing, parse_key_list
    from validator.core.verify import check_digest
    from validator.sources.evidence import EvidenceSource

    src = EvidenceSource(path)
    info = _info(path)
    keys_doc = orjson.loads((src.root / "public-keys.json").read_bytes())
    ring = KeyRing(parse_key_list(keys_doc))
    by_fp = {k["Fingerprint"]: k["Value"] for k in keys_doc["PublicKeyList"]}
    digests = []
    for key in info["keys"]:
        if "/CloudTrail-Digest/" in key:
            ref = ObjectRef(info["bucket"], key)
            with src.open(ref) as s:
                digests.append((ref, b"".join(s.chunks()), dict(s.meta.metadata)))

    distinct = len(digests)
    digests = digests * max(1, -(-500 // max(1, distinct)))  # at least 500 per timing, for steadier figures

    def ours() -> None:
        for ref, body, md in digests:
            assert check_digest(body, md, ref, ref, ring).verdict.status == "valid"

    validator = Sha256RSADigestValidator()

    def theirs() -> None:
        for ref, body, md in digests:
            inflated = zlib.decompress(body, zlib.MAX_WBITS | 16)
            data = json.loads(inflated.decode())
            data["_signature"], data["_signature_algorithm"] = md["signature"], md["signature-algorithm"]
            validator.validate(ref.bucket, ref.key, by_fp[data["digestPublicKeyFingerprint"]], data, inflated)

    ours(), theirs()  # warm
    runs: dict[str, list[float]] = {"ours": [], "awscli": []}
    for _ in range(repeats):  # alternately, so that a change of load hits both alike
        for name, fn in (("ours", ours), ("awscli", theirs)):
            t0 = time.perf_counter()
            fn()
            runs[name].append(time.perf_counter() - t0)

    def median(xs: list[float]) -> float:
        return sorted(xs)[len(xs) // 2]

    return {"digests": len(digests), "distinct": distinct, "ours_seconds": median(runs["ours"]),
            "awscli_seconds": median(runs["awscli"]), "digest_bytes": sum(len(b) for _, b, _ in digests)}


DRIVERS = {"ours_evidence": ours_evidence, "ours_s3": ours_s3, "bare_get": bare_get, "awscli": awscli,
           "ceiling": ceiling, "digest_verify": digest_verify}


def child_main(spec: str) -> int:
    """`python -m benchmarks.run --child JSON`: run one driver, print its result as one JSON line."""
    job = orjson.loads(spec)
    os.environ.update(CREDENTIALS)
    for k in [k for k in os.environ if k.startswith("AWS_ENDPOINT_URL")]:
        del os.environ[k]
    result = DRIVERS[job.pop("driver")](**job)
    result["rss_end"] = _rss_now()
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    sys.stdout.flush()
    return 0


__all__ = ["DRIVERS", "child_main"]
