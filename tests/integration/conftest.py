"""Integration harness: moto's standalone server as a subprocess, the test proxy in front of it, the real CLI.

- `moto_url` (session): `python -m moto.server` on a free loopback port, started once, stopped at the end.
- `proxy` (session): awsproxy.AwsProxy in front of it; its state is reset for every test.
- `aws_env` (every test here): dummy credentials and a region, and nothing of the user's AWS configuration,
  set with monkeypatch so that nothing leaks into other tests.
- `world` (every test that asks): moto reset, unique bucket and trail names, `deploy()` a synthetic trail
  (optionally tampered) through boto3, and `validate()`/`acquire()` through the real CLI over HTTP.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import orjson
import pytest
from click.testing import CliRunner

from validator.cli import main as cli_main
from validator.synth import SyntheticTrail, TrailSpec, generate
from validator.synth.s3writer import AwsTarget, provision_kms_keys, provision_organization, trail_status, write_trail
from validator.synth.tamper import apply_named

from .awsproxy import AwsProxy, ProxyState

ACCOUNT = "111122223333"
SERVER_START_TIMEOUT = 60

pytestmark = pytest.mark.integration


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env() -> dict[str, str]:
    """The environment for child processes: no AWS configuration of the user's, dummy credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true")
    return env


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory):
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    env = _clean_env()
    env["MOTO_ACCOUNT_ID"] = ACCOUNT
    with open(log, "wb") as logf:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                env=env, stdout=logf, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while True:
        if proc.poll() is not None:
            pytest.fail(f"moto server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"moto server did not answer within {SERVER_START_TIMEOUT}s")
            time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def proxy(moto_url: str):
    p = AwsProxy(moto_url, ProxyState(account=ACCOUNT)).start()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in list(os.environ):
        if k.startswith("AWS_"):
            monkeypatch.delenv(k)
    for k, v in _clean_env().items():
        if k.startswith("AWS_"):
            monkeypatch.setenv(k, v)


# --- running the CLI -----------------------------------------------------------------------------


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str
    records: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] | None = None

    def of(self, kind: str | None = None, status: str | None = None, reason: str | None = None) -> list[dict]:
        return [r for r in self.records if (kind is None or r["kind"] == kind)
                and (status is None or r.get("status") == status) and (reason is None or r.get("reason") == reason)]

    def by_key(self, key: str) -> dict[str, Any]:
        found = [r for r in self.records if r.get("key") == key]
        assert len(found) == 1, f"{key}: {len(found)} records"
        return found[0]

    def problems(self) -> Counter:
        """(kind, status, reason) of every record that is not valid."""
        return Counter((r["kind"], r.get("status"), r.get("reason")) for r in self.records
                       if r["kind"] != "gap" and r.get("status") != "valid")

    def verdicts(self) -> list[tuple]:
        """What must be equal between two runs over the same trail (S3 and evidence)."""
        out = []
        for r in self.records:
            if r["kind"] == "gap":
                out.append(("gap", r["region"], r["account_id"], r["start_time"], r["end_time"]))
            else:
                out.append((r["kind"], r["status"], r["reason"], r.get("bucket"), r.get("key"), r.get("digest_key"),
                            r.get("start_time") if r.get("key") is None else None))
        return sorted(out, key=repr)


def _parse_json_lines(stdout: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    records, summary = [], None
    for line in stdout.splitlines():
        if not line.strip():
            continue
        doc = orjson.loads(line)  # nothing but JSON on stdout
        if doc["kind"] == "summary":
            summary = doc
        else:
            records.append(doc)
    return records, summary


def run_cli(args: list[str]) -> Run:
    """The real CLI, in this process (click's runner); it talks HTTP to the endpoint like the console script."""
    result = CliRunner().invoke(cli_main, args, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback
        raise AssertionError("the CLI raised:\n" + "".join(traceback.format_exception(result.exception)))
    run = Run(result.exit_code, result.stdout, result.stderr)
    if "--output" in args and args[args.index("--output") + 1] == "json":
        run.records, run.summary = _parse_json_lines(result.stdout)
        if run.exit_code == 2:  # refused: no summary
            assert run.summary is None, result.stdout
        else:
            assert run.summary is not None, f"no summary line; stderr: {result.stderr}"
            assert run.summary["exit_code"] == run.exit_code
    return run


# --- the world of one test -------------------------------------------------------------------------


class World:
    """One test's AWS: a reset moto behind the proxy, unique names, helpers to deploy and validate."""

    def __init__(self, moto_url: str, proxy: AwsProxy, target: AwsTarget, tmp_path: Path):
        self.moto_url = moto_url
        self.proxy = proxy
        self.state = proxy.state
        self.endpoint = proxy.url
        self.tmp = tmp_path
        self.target = target
        self.suffix = uuid.uuid4().hex[:8]
        self._n = 0

    def client(self, service: str, region: str = "us-east-1") -> Any:
        return self.target.client(service, region)

    def spec(self, **overrides: Any) -> TrailSpec:
        """A small trail (2 regions, 4 hours) with names unique to this test."""
        self._n += 1
        base = dict(trail_name=f"trail-{self.suffix}-{self._n}", bucket=f"ct-logs-{self.suffix}-{self._n}",
                    regions=("us-east-1", "eu-west-1"), accounts=(ACCOUNT,), hours=4, logs_per_hour=(1, 3),
                    events_per_log=(2, 6), rotate_at_hour=2, seed=1)
        base.update(overrides)
        return TrailSpec(**base)

    def build(self, tampers: tuple[str, ...] | list[str] = (), mutate: Callable[[SyntheticTrail], Any] | None = None,
              **overrides: Any) -> SyntheticTrail:
        """Generate (with real KMS keys of the endpoint) and tamper, without writing."""
        spec = self.spec(**overrides)
        spec = provision_organization(provision_kms_keys(spec, self.target), self.target)
        trail = generate(spec)
        for t in tampers:
            apply_named(trail, t)
        if mutate is not None:
            mutate(trail)
        return trail

    def deploy(self, tampers: tuple[str, ...] | list[str] = (), mutate: Callable[[SyntheticTrail], Any] | None = None,
               register: bool = True, write_times: bool = False, versioning: bool = False,
               object_lock: dict[str, Any] | None = None, **overrides: Any) -> SyntheticTrail:
        """Build and write a trail. `write_times`: the proxy serves CloudTrail's write times as LastModified;
        `versioning`, `object_lock`: the bucket's configuration."""
        trail = self.build(tampers, mutate, **overrides)
        write_trail(trail, self.target, versioning=versioning, object_lock=object_lock)
        if register:
            self.register(trail)
        if write_times:
            self.pin_write_times(trail)
        return trail

    def pin_write_times(self, trail: SyntheticTrail) -> None:
        """Make the proxy answer each object's LastModified with the time CloudTrail wrote it (as generated)."""
        s3 = self.client("s3", trail.spec.home_region)
        for obj in trail.iter_objects():
            if obj.meta.last_modified is None:
                continue
            try:
                head = s3.head_object(Bucket=obj.ref.bucket, Key=obj.ref.key)
            except Exception:  # e.g. SSE-C: HEAD refused without the key; nothing to pin
                continue
            vid = head.get("VersionId")
            with self.state.lock:
                self.state.write_times[(obj.ref.bucket, obj.ref.key, None if vid in (None, "null") else vid)] = \
                    obj.meta.last_modified

    def register(self, trail: SyntheticTrail) -> None:
        """Tell the proxy what moto cannot: the trail's per-region public keys and its digest delivery status."""
        with self.state.lock:
            for region in trail.keys:
                self.state.public_keys[region] = trail.public_key_list(region)
            status = trail_status(trail)
            self.state.trail_status[trail.arn] = status
            self.state.trail_status[trail.spec.trail_name] = status

    def validate(self, trail: SyntheticTrail | str, *extra: str) -> Run:
        arn = trail if isinstance(trail, str) else trail.arn
        return run_cli(["validate", "--trail-arn", arn, "--output", "json", "--endpoint-url", self.endpoint,
                        "--workers", "8", *extra])

    def validate_evidence(self, trail: SyntheticTrail, *extra: str, path: Path | None = None) -> Run:
        if path is None:
            self._n += 1
            path = self.tmp / f"evidence-{self._n}"
            trail.write_evidence(str(path))
        return run_cli(["validate", "--trail-arn", trail.arn, "--output", "json", "--source", str(path), *extra])

    def acquire(self, trail: SyntheticTrail, dest: Path, *extra: str) -> Run:
        return run_cli(["acquire", "--trail-arn", trail.arn, "--endpoint-url", self.endpoint, "--workers", "8",
                        *extra, str(dest)])


@pytest.fixture(scope="session")
def target(proxy: AwsProxy) -> AwsTarget:
    """boto3 clients for writing test data through the proxy (shared: creating clients is slow)."""
    import boto3
    return AwsTarget(proxy.url, session=boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                                      region_name="us-east-1"))


@pytest.fixture
def world(moto_url: str, proxy: AwsProxy, target: AwsTarget, tmp_path: Path) -> World:
    req = urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(req, timeout=10):
        pass
    proxy.state.reset()
    return World(moto_url, proxy, target, tmp_path)


@pytest.fixture
def ctvalidate_bin() -> str:
    """The installed console script (for tests that need a real process: signals, a bare environment)."""
    path = Path(sys.executable).parent / "ctvalidate"
    return str(path) if path.exists() else shutil.which("ctvalidate") or "ctvalidate"


__all__ = ["ACCOUNT", "Run", "World", "run_cli"]


def wait_for_calls(world: "World", proc: subprocess.Popen, operation: str = "GetObject", count: int = 1,
                   timeout: float = 60) -> None:
    """Block until the proxy has seen `count` calls of `operation` from the running `proc` (which must not
    have ended meanwhile): the moment to interrupt or race a run that is under way."""
    deadline = time.monotonic() + timeout
    while len(world.state.calls_of(operation)) < count:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"no {count} {operation} call(s) within {timeout} s"
        time.sleep(0.05)
