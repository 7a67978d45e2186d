"""The command line: options -> configuration -> execute -> exit code."""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import click
import orjson

from .core.keys import KeyRing, parse_key_list
from .errors import ConfigError, FormatError
from .model import TrailArn, format_time, parse_duration, parse_time
from .policy import RunConfig, default_workers

MAX_KEY_FILE = 4 << 20


def _time(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except FormatError as exc:
        raise click.BadParameter(str(exc)) from None


def _duration(ctx: click.Context, param: click.Parameter, value: str | None):
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _csv(value: str | None) -> frozenset[str]:
    return frozenset(v.strip() for v in (value or "").split(",") if v.strip())


def _arn(ctx: click.Context, param: click.Parameter, value: str) -> TrailArn:
    try:
        return TrailArn.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def load_key_files(paths: tuple[str, ...]) -> KeyRing:
    """Public keys from `list-public-keys` JSON files. A malformed file or a lying key is a config error."""
    ring = KeyRing()
    for path in paths:
        try:
            p = Path(path)
            if p.stat().st_size > MAX_KEY_FILE:
                raise ConfigError(f"public key file {path} is larger than {MAX_KEY_FILE} bytes")
            doc = orjson.loads(p.read_bytes())
            for key in parse_key_list(doc, origin=path):
                ring.add(key)
        except OSError as exc:
            raise ConfigError(f"cannot read public key file {path}: {exc.strerror}") from None
        except orjson.JSONDecodeError:
            raise ConfigError(f"public key file {path} is not JSON") from None
        except FormatError as exc:
            raise ConfigError(f"public key file {path} is refused: {exc}") from None
    return ring


def _trail_options(f):
    """--trail-arn and where the trail delivers, the same for every command that reads a trail."""
    for opt in reversed([
        click.option("--trail-arn", required=True, callback=_arn,
                     help="arn:<partition>:cloudtrail:<region>:<account>:trail/<name>"),
        click.option("--s3-bucket", help="where the trail delivers; default: from DescribeTrails"),
        click.option("--s3-prefix", help="the trail's key prefix; default: from DescribeTrails"),
        click.option("--account-id", help="the member account, for organization trails"),
    ]):
        f = opt(f)
    return f


def _aws_client_options(f):
    """How the AWS clients are made, as in the AWS CLI."""
    for opt in reversed([
        click.option("--endpoint-url", help="one endpoint for every AWS service the run calls"),
        click.option("--region", "client_region", help="the client region (does not narrow the regions read)"),
        click.option("--profile", help="the AWS profile"),
    ]):
        f = opt(f)
    return f


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="ctvalidate")
def main() -> None:
    """ctvalidate: prove whether an AWS CloudTrail history is intact."""


@main.command()
@_trail_options
@_aws_client_options
@click.option("--start-time", callback=_time, help="ISO 8601 UTC; default: the oldest digest found")
@click.option("--end-time", callback=_time, help="ISO 8601 UTC; default: now")
@click.option("--verbose", is_flag=True, help="print every valid file too")
@click.option("--source", "source_dir", type=click.Path(file_okay=False), help="an evidence directory (no AWS access)")
@click.option("--public-keys", "public_keys", multiple=True, type=click.Path(dir_okay=False),
              help="list-public-keys JSON; may be repeated")
@click.option("--manifest-sha256", help="with --source: the seal acquire printed")
@click.option("--regions", help="validate only these regions (comma-separated)")
@click.option("--expect-regions", help="regions that must have a chain in the window")
@click.option("--expect-accounts", help="accounts that must have a chain in the window")
@click.option("--copy-of", help="s3://BUCKET[/PREFIX]: the location being validated is a copy of this one")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--workers", type=click.IntRange(1, 512), default=None, help="concurrency (default: chosen for the machine)")
@click.option("--check-write-times", is_flag=True, help="flag objects written later than CloudTrail would have")
@click.option("--write-time-tolerance", callback=_duration, default="1h", show_default=True)
@click.option("--require-explained-gaps", is_flag=True, help="an unexplained gap is an integrity failure")
@click.option("--backfill-horizon", callback=_duration, default="24h", show_default=True)
@click.option("--expect-log-key", "expect_log_keys", multiple=True,
              help="a further KMS key ARN that log files may legitimately use (a trail whose key changed)")
@click.option("--report", "report", type=click.Path(dir_okay=False),
              help="also write a self-contained HTML report (timeline, problems, parameters) to this file")
@click.option("--no-progress", is_flag=True, help="no progress line on stderr (it is shown only on a terminal)")
@click.option("--state", "state", type=click.Path(dir_okay=False),
              help="SQLite state of verified objects: the next run fetches only what is new or changed")
@click.option("--state-sha256", help="with --state: the state file's SHA-256 the previous run printed (else refused)")
@click.option("--recheck", is_flag=True, help="with --state: fetch and hash every object again")
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="where digests and log files are fetched and verified: this process's threads, or a Dask "
                   "distributed cluster (pip install 'ctvalidate[dask]'); chains are linked here either way")
@click.option("--scheduler", envvar="DASK_SCHEDULER_ADDRESS", show_envvar=True,
              help="with --engine dask: the scheduler's address, e.g. tcp://10.0.0.5:8786 (default "
                   "$DASK_SCHEDULER_ADDRESS; without either, a LocalCluster of worker processes is started on "
                   "this machine). Workers read storage with their own credentials; --workers is each task's "
                   "concurrency")
def validate(trail_arn: TrailArn, start_time, end_time, s3_bucket, s3_prefix, account_id, verbose, source_dir,
             public_keys, manifest_sha256, regions, expect_regions, expect_accounts, copy_of, endpoint_url,
             client_region, profile, output, workers, check_write_times, write_time_tolerance,
             require_explained_gaps, backfill_horizon, expect_log_keys, report, no_progress, state, state_sha256,
             recheck, engine, scheduler) -> None:
    """Validate a trail's digests and log files (live S3, or an evidence directory with --source)."""
    if start_time and end_time and start_time > end_time:
        raise click.UsageError("--start-time must be before --end-time")
    if manifest_sha256 and not source_dir:
        raise click.UsageError("--manifest-sha256 goes with --source")
    if (state_sha256 or recheck) and not state:
        raise click.UsageError("--state-sha256 and --recheck go with --state")
    if (engine != "dask" and scheduler
            and click.get_current_context().get_parameter_source("scheduler") == click.core.ParameterSource.COMMANDLINE):
        raise click.UsageError("--scheduler goes with --engine dask")
    if engine == "dask" and state:  # the state records what the driver's own reads saw; a worker's reads are not
        raise click.UsageError("--state does not go with --engine dask yet: the workers' reads would not reach "
                               "the state file")
    config = RunConfig(
        trail=trail_arn, start=start_time, end=end_time, bucket=s3_bucket, prefix=s3_prefix,
        account_id=account_id, regions=_csv(regions) or None, expect_regions=_csv(expect_regions),
        expect_accounts=_csv(expect_accounts), backfill_horizon=backfill_horizon, copy_of=copy_of,
        workers=workers or default_workers(local=source_dir is not None), check_write_times=check_write_times,
        write_time_tolerance=write_time_tolerance, require_explained_gaps=require_explained_gaps,
        extra_log_keys=frozenset(expect_log_keys),
    )
    from .app import ValidateRequest, run_validate
    request = ValidateRequest(config=config, source_dir=source_dir, public_key_files=tuple(public_keys),
                              manifest_sha256=manifest_sha256, endpoint_url=endpoint_url, region=client_region,
                              profile=profile, output=output, verbose=verbose, report=report,
                              progress=not no_progress, state=state, state_sha256=state_sha256, recheck=recheck,
                              engine=engine, scheduler=scheduler if engine == "dask" else None)
    _exit(run_validate(request), at_once=engine == "local")  # a Dask cluster is left to shut down in order


@main.command()
@click.argument("dest", type=click.Path(file_okay=False))
@click.option("--hours", type=click.IntRange(1, 24 * 366 * 3), default=6, show_default=True)
@click.option("--start", "start", callback=_time, default="2026-11-02T00:00:00Z", show_default=True)
@click.option("--regions", default="us-east-1,eu-west-1", show_default=True)
@click.option("--accounts", default="111122223333", show_default=True, help="first is the trail's account")
@click.option("--org-id", help="organization layout (AWSLogs/o-.../ACCOUNT/)")
@click.option("--prefix", default="", help="the trail's key prefix")
@click.option("--bucket", default="ct-demo-logs", show_default=True)
@click.option("--trail-name", default="demo-trail", show_default=True)
@click.option("--rotate-at-hour", type=int, default=3, show_default=True, help="key rotation; -1 for none")
@click.option("--stop", "stops", multiple=True, help="FROM-TO hours without logging (a gap), e.g. 2-4")
@click.option("--backfill-hour", "backfill_hours", multiple=True, type=int, help="an hour with a late log and a backfill digest")
@click.option("--kms-key-arn", help="the trail's KMS key (logs SSE-KMS under it)")
@click.option("--logs-per-hour", default="1-3", show_default=True)
@click.option("--events-per-log", default="3-12", show_default=True)
@click.option("--logging-at-end", is_flag=True, help="the trail still logs at acquisition (default: stopped, acquired 2 days later)")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--tamper", "tampers", multiple=True,
              help="a named tamper operation, e.g. modify-log:3, delete-digest:eu-west-1:2 (see validator.synth.tamper)")
@click.option("--keys-out", type=click.Path(dir_okay=False), help="also write the public keys here")
def generate(dest, hours, start, regions, accounts, org_id, prefix, bucket, trail_name, rotate_at_hour, stops,
             backfill_hours, kms_key_arn, logs_per_hour, events_per_log, logging_at_end, seed, tampers, keys_out) -> None:
    """Write a synthetic signed trail as an evidence directory (for demos, tests and benchmarks)."""
    from .synth import TrailSpec, generate as gen
    from .synth.tamper import apply_named

    def rng(text: str) -> tuple[int, int]:
        a, _, b = text.partition("-")
        return int(a), int(b or a)

    spec = TrailSpec(
        trail_name=trail_name, home_region=_csv(regions) and regions.split(",")[0].strip() or "us-east-1",
        regions=tuple(r.strip() for r in regions.split(",") if r.strip()),
        accounts=tuple(a.strip() for a in accounts.split(",") if a.strip()), org_id=org_id, bucket=bucket,
        prefix=prefix, start=start, hours=hours, logs_per_hour=rng(logs_per_hour),
        events_per_log=rng(events_per_log), rotate_at_hour=None if rotate_at_hour < 0 else rotate_at_hour,
        stops=tuple(rng(s) for s in stops), backfill_hours=tuple(backfill_hours), kms_key_arn=kms_key_arn,
        logging_at_end=logging_at_end, seed=seed)
    trail = gen(spec)
    for t in tampers:
        click.echo(f"tamper: {apply_named(trail, t)}", err=True)
    seal = trail.write_evidence(dest)
    if keys_out:
        Path(keys_out).write_bytes(orjson.dumps(trail.public_keys_doc(), option=orjson.OPT_INDENT_2))
    click.echo(f"trail-arn: {trail.arn}")
    click.echo(f"objects: {len(trail.objects)}")
    click.echo(f"manifest-sha256: {seal}")


@main.command()
@_trail_options
@_aws_client_options
@click.argument("dest", type=click.Path(file_okay=False))
@click.option("--start-time", callback=_time)
@click.option("--end-time", callback=_time)
@click.option("--regions", help="acquire only these regions (comma-separated)")
@click.option("--public-keys", "public_keys", multiple=True, type=click.Path(dir_okay=False),
              help="store these keys instead of calling ListPublicKeys")
@click.option("--workers", type=click.IntRange(1, 512), default=None)
def acquire(dest, trail_arn: TrailArn, s3_bucket, s3_prefix, start_time, end_time, account_id, regions,
            public_keys, endpoint_url, client_region, profile, workers) -> None:
    """Copy a trail's digests and logs from S3 into a sealed evidence directory DEST."""
    config = RunConfig(trail=trail_arn, start=start_time, end=end_time, bucket=s3_bucket, prefix=s3_prefix,
                       account_id=account_id, regions=_csv(regions) or None, workers=workers or default_workers())
    from .acquire import AcquireRequest, run_acquire
    _exit(run_acquire(AcquireRequest(config=config, dest=dest, public_key_files=tuple(public_keys),
                                     endpoint_url=endpoint_url, region=client_region, profile=profile)))


def _exit(code: int, at_once: bool = True) -> None:
    """Exit with `code`. After Ctrl-C (130) the partial summary is already written: leave at once, without
    waiting for the reads still in flight in worker threads (a stalled request could hold them, and so
    the exit, for minutes). In-process callers (click's test runner) get an ordinary SystemExit."""
    if code == 130 and at_once and sys.stdout is sys.__stdout__:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    sys.exit(code)


@main.command()
@_trail_options
@_aws_client_options
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--sample", type=click.IntRange(0, 2000), default=20, show_default=True,
              help="the most recently written objects to HEAD per class and folder (log files and digests per "
                   "region, other objects in the bucket); 0: every object listed")
def inspect(trail_arn: TrailArn, s3_bucket, s3_prefix, account_id, endpoint_url, client_region, profile, output,
            sample) -> None:
    """Explain a trail: logging, encryption expected and found per object class, object-level logging, limits."""
    from .inspect import InspectRequest, run_inspect
    sys.exit(run_inspect(InspectRequest(trail=trail_arn, bucket=s3_bucket, prefix=s3_prefix, account_id=account_id,
                                        endpoint_url=endpoint_url, region=client_region, profile=profile,
                                        output=output, sample=sample)))


def format_now() -> str:
    return format_time(datetime.now(timezone.utc)) or ""


if __name__ == "__main__":  # pragma: no cover
    main()
