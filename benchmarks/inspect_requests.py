"""What `inspect` costs: wall time and AWS requests by operation, against moto's server behind the test proxy.

    .venv/bin/python -m benchmarks.inspect_requests [--hours 48] [--regions us-east-1,eu-west-1,ap-south-1] [--sample 20]

Deploys one synthetic trail (plus a few other objects), runs `ctvalidate inspect` once, and prints how many
objects the bucket holds against how many HEAD and LIST requests inspect made. Loopback only.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout

import boto3

from tests.integration.awsproxy import AwsProxy, ProxyState
from tests.integration.conftest import ACCOUNT, _clean_env, _free_port
from validator.cli import main as cli_main
from validator.synth import TrailSpec, generate
from validator.synth.s3writer import AwsTarget, provision_kms_keys, trail_status, write_trail


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=int, default=48)
    ap.add_argument("--regions", default="us-east-1,eu-west-1,ap-south-1")
    ap.add_argument("--sample", default="20")
    args = ap.parse_args()
    port = _free_port()
    env = _clean_env() | {"MOTO_ACCOUNT_ID": ACCOUNT}
    os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        proxy = AwsProxy(f"http://127.0.0.1:{port}", ProxyState(account=ACCOUNT, list_page_size=None)).start()
        target = AwsTarget(proxy.url, session=boto3.Session(aws_access_key_id="testing",
                                                            aws_secret_access_key="testing", region_name="us-east-1"))
        spec = TrailSpec(trail_name="bench", bucket="bench-logs", regions=tuple(args.regions.split(",")),
                         hours=args.hours, kms_key_arn="create", bucket_default_key="create", rotate_at_hour=None)
        trail = generate(provision_kms_keys(spec, target))
        write_trail(trail, target)
        for i in range(50):
            target.client("s3").put_object(Bucket="bench-logs", Key=f"other/{i}.txt", Body=b"x")
        proxy.state.trail_status[trail.arn] = trail_status(trail)
        proxy.state.calls.clear()
        out = io.StringIO()
        t0 = time.perf_counter()
        with redirect_stdout(out), redirect_stderr(io.StringIO()):
            try:
                cli_main(["inspect", "--trail-arn", trail.arn, "--endpoint-url", proxy.url, "--output", "json",
                          "--sample", args.sample], standalone_mode=False)
            except SystemExit:
                pass
        elapsed = time.perf_counter() - t0
        calls = Counter(c[1] for c in proxy.state.calls)
        print(f"objects in the bucket: {len(trail.objects) + 50} ({len(trail.logs())} logs, "
              f"{len(trail.digests())} digests, 50 other) in {len(spec.regions)} regions")
        print(f"inspect --sample {args.sample}: {elapsed:.2f} s wall")
        for op, n in sorted(calls.items()):
            print(f"  {op:22} {n}")
        proxy.stop()
    finally:
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
