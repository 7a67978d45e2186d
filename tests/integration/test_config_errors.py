"""Before validation can run: no credentials, an unknown bucket, a denied listing -> one clear line, exit 2."""

from __future__ import annotations

import os
import subprocess

import pytest

from .conftest import ACCOUNT

pytestmark = pytest.mark.integration


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("ctvalidate: error: ")
    assert "Traceback" not in stderr
    return lines[0]


def test_no_credentials(world, ctvalidate_bin, tmp_path):
    """The installed console script, in a bare environment: no keys, no profile files, no instance role."""
    trail = world.deploy()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true", AWS_DEFAULT_REGION="us-east-1")
    proc = subprocess.run([ctvalidate_bin, "validate", "--trail-arn", trail.arn, "--endpoint-url", world.endpoint,
                           "--output", "json"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    line = _one_error_line(proc.stderr)
    assert "credentials" in line
    assert not world.state.calls_of("DescribeTrails")  # refused before asking anything


def test_unknown_bucket(world):
    trail = world.deploy()
    run = world.validate(trail, "--s3-bucket", f"no-such-bucket-{world.suffix}")
    assert run.exit_code == 2
    line = _one_error_line(run.stderr)
    assert f"no-such-bucket-{world.suffix}" in line and "does not exist" in line


def test_denied_listing(world):
    trail = world.deploy()
    world.state.denied_list_buckets.add(trail.spec.bucket)
    run = world.validate(trail)
    assert run.exit_code == 2
    line = _one_error_line(run.stderr)
    assert trail.spec.bucket in line and "denied" in line


def test_unknown_trail_without_bucket(world):
    """DescribeTrails knows no such trail and no --s3-bucket: nothing to validate."""
    world.deploy()
    run = world.validate(f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/never-created")
    assert run.exit_code == 2
    assert "--s3-bucket" in run.stderr.splitlines()[-1]


def test_unknown_profile(world):
    trail = world.deploy()
    run = world.validate(trail, "--profile", "no-such-profile")
    assert run.exit_code == 2
    assert "profile" in _one_error_line(run.stderr)


def test_no_public_keys(world):
    """ListPublicKeys answers nothing in any region: exit 2, asking for --public-keys."""
    trail = world.deploy()
    world.state.public_keys.clear()
    run = world.validate(trail)
    assert run.exit_code == 2
    assert "--public-keys" in _one_error_line(run.stderr)


def test_credentials_aws_refuses(world, monkeypatch):
    trail = world.deploy()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREVOKEDKEY000000")
    world.state.rejected_access_keys.add("AKIAREVOKEDKEY000000")
    run = world.validate(trail)
    assert run.exit_code == 2
    assert "refused the credentials" in _one_error_line(run.stderr)


@pytest.mark.parametrize("variables", [("AWS_ENDPOINT_URL",), ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_CLOUDTRAIL")])
def test_endpoint_from_the_environment(world, monkeypatch, variables):
    """Without --endpoint-url, botocore's own endpoint variables are honoured."""
    from .conftest import run_cli
    trail = world.deploy()
    for v in variables:
        monkeypatch.setenv(v, world.endpoint)
    run = run_cli(["validate", "--trail-arn", trail.arn, "--output", "json"])
    assert run.exit_code == 0, run.stderr
    assert run.summary["digests"] == {"valid": len(trail.digests())}


def test_trail_found_by_name_when_the_endpoint_serves_another_account(world):
    """An emulator serving one account answers DescribeTrails with its own account in the ARN."""
    trail = world.deploy(accounts=("123456789012",))
    assert trail.arn.split(":")[4] == "123456789012"
    run = world.validate(trail)
    assert run.exit_code == 0, run.stderr
    assert "DescribeTrails names the trail arn:aws:cloudtrail:us-east-1:111122223333:trail/" in run.stderr


def test_folder_that_cannot_be_listed_mid_run(world):
    """A region's log folder refuses listing after validation began: one line, exit 2, no traceback."""
    trail = world.deploy()
    world.state.denied_list_prefixes.add((trail.spec.bucket, f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/"))
    run = world.validate(trail)
    assert run.exit_code == 2
    line = _one_error_line(run.stderr)
    assert "CloudTrail/us-east-1/" in line and "denied" in line
