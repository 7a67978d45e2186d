"""execute(): from a parsed request to records, reports and an exit code. The CLI only builds the request."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import IO

from .core.keys import KeyRing
from .errors import ConfigError, SourceError
from .model import format_time
from .policy import RunConfig
from .report import Tee, make_reporter
from .report.progress import Progress
from .sources.base import Source


@dataclass(frozen=True)
class ValidateRequest:
    config: RunConfig
    source_dir: str | None = None
    public_key_files: tuple[str, ...] = ()
    manifest_sha256: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    output: str = "text"
    verbose: bool = False
    report: str | None = None  # --report FILE.html: also write the self-contained HTML report
    progress: bool = True  # a progress line on stderr, when stderr is a terminal
    state: str | None = None  # --state FILE: incremental runs (validator.state)
    state_sha256: str | None = None  # --state-sha256: the state file's hash the previous run printed
    recheck: bool = False  # --recheck: with --state, fetch and hash everything again
    engine: str = "local"  # "local" | "dask": where the per-object checks run (validator.engines)
    scheduler: str | None = None  # --engine dask: the scheduler's address; None starts a LocalCluster


def open_source(req: ValidateRequest) -> Source:
    if req.source_dir:
        from .sources.evidence import EvidenceSource
        return EvidenceSource(req.source_dir)
    from .sources.s3 import S3Source
    return S3Source.create(endpoint_url=req.endpoint_url, region=req.region, profile=req.profile,
                           workers=req.config.workers)


def load_keys(req: ValidateRequest) -> tuple[KeyRing | None, str | None]:
    """Keys from --public-keys files; None lets the source supply them (ListPublicKeys, evidence)."""
    if req.public_key_files:
        from .cli import load_key_files
        return load_key_files(req.public_key_files), "file"
    return None, None


M_ARENA_MAX = -8  # glibc's mallopt parameter
MALLOC_ARENAS = 1


def limit_malloc_arenas() -> None:
    """One glibc malloc arena (its default is eight per core): each worker thread that inflates and hashes
    would otherwise get its own, and the memory freed in them stays with the process. Measured on a year of
    one region (evidence, 3 workers): peak RSS 56 MiB with the default, 51 with two arenas, 45 with one, and
    no slower (the threads' small objects are Python's own allocator's, under the GIL; their large buffers
    are mmap'ed). Only where glibc is the C library; elsewhere nothing changes."""
    try:
        import ctypes
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_ARENA_MAX, MALLOC_ARENAS)


def run_validate(req: ValidateRequest, out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    limit_malloc_arenas()  # before the run starts its threads
    engines: list = []  # closed whatever happens: a Dask client, the LocalCluster it started
    try:
        return _run_validate(req, out, err, engines)
    finally:
        for engine in engines:
            engine.close()


def _run_validate(req: ValidateRequest, out: IO[str] | None, err: IO[str] | None, engines: list) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    from .pipeline import Validation
    progress = Progress(err, enabled=req.progress)  # draws nothing unless stderr is a terminal
    out, err = progress.guard(out), progress.guard(err)
    html = None
    state = None
    try:
        source = progress.watch(open_source(req))
        if req.manifest_sha256 and (source.manifest_sha256 or "").lower() != req.manifest_sha256.strip().lower():
            raise ConfigError(f"the evidence manifest hashes to {source.manifest_sha256}, not to the seal "
                              f"{req.manifest_sha256}: the evidence directory was changed")
        keys, origin = load_keys(req)
        state = _open_state(req)
        from .engines import make_engine
        engines.append(make_engine(req.engine, req.scheduler, profile=req.profile))
        validation = Validation(source, req.config, keys, origin, state=state, recheck=req.recheck,
                                engine=engines[-1])
        if req.report:
            from .report.html import HtmlReporter, run_parameters
            html = HtmlReporter(req.report, run_parameters(
                req.config, window_end=validation.window_end,
                source=(f"evidence directory {req.source_dir}" if req.source_dir else
                        f"live S3 s3://{validation.plan.bucket}/{validation.plan.prefix}"
                        + (f" via {req.endpoint_url}" if req.endpoint_url else "")),
                **{"Public key files": list(req.public_key_files), "Seal checked": bool(req.manifest_sha256),
                   "Output": req.output + (", verbose" if req.verbose else ""), "State file": req.state,
                   "State anchored": bool(req.state_sha256), "Recheck": req.recheck}))
    except (ConfigError, SourceError) as exc:
        if state is not None:
            state.close()
        err.write(f"ctvalidate: error: {exc}\n")
        return 2
    except KeyboardInterrupt:  # during set-up (a slow CloudTrail call): 130 and an empty summary, not click's exit 1
        if state is not None:
            state.close()
        return _interrupted_before_start(req, out, err)
    if state is not None:
        _state_notice(state, err)
    for problem in getattr(source, "problems", []):
        err.write(f"ctvalidate: warning: {problem}\n")
    shown = Tee(progress, make_reporter(req.output, out, err, req.verbose))
    reporter = Tee(shown, html)
    reporter.start({"trail_arn": str(req.config.trail), "start_time": format_time(req.config.start),
                    "end_time": format_time(validation.window_end)})
    try:
        for record in validation.records():
            reporter.record(record)
    except KeyboardInterrupt:
        validation.interrupt()
    except (ConfigError, SourceError) as exc:  # e.g. a folder that cannot be listed: one line, not a traceback
        if state is not None:
            state.close()  # the previous state stays as it was
        progress.finish(validation.summary)
        err.write(f"ctvalidate: error: {exc}\n")
        if html is not None:
            _finish_report(html, validation.summary, err, error=str(exc))
        return 2
    except BaseException:
        if state is not None:
            state.close()
        raise
    for problem in validation.history.problems:  # found during the run (e.g. versions not listable)
        err.write(f"ctvalidate: warning: {problem}\n")
    if state is not None:
        _finish_state(state, validation.summary, err)
    shown.finish(validation.summary)
    if not validation.summary.interrupted and not any(validation.summary.digests.values()) \
            and not any(validation.summary.logs.values()):
        err.write(f"ctvalidate: warning: nothing was validated: no digest or log file of this trail in the window "
                  f"under s3://{validation.plan.bucket}/{validation.plan.prefix}AWSLogs/ (check --s3-bucket, "
                  f"--s3-prefix, --account-id, --regions and the window)\n")
    if html is not None:
        _finish_report(html, validation.summary, err)
    source.close()
    return validation.summary.exit_code


def _open_state(req: ValidateRequest):
    if not req.state:
        return None
    from .state import StateStore
    return StateStore.open(req.state, req.state_sha256)


def _state_notice(state, err: IO[str]) -> None:
    if state.created:
        err.write(f"ctvalidate: note: new state file {state.path}: every object in range is fetched this once\n")
    elif not state.anchored:
        err.write(f"ctvalidate: warning: the state file {state.path} is not anchored: give --state-sha256 with "
                  "the hash the previous run printed, so that a replaced state file is refused\n")


def _finish_state(state, summary, err: IO[str]) -> None:
    """Commit this run's updates (not when interrupted: the previous state stays) and print the anchor."""
    if summary.interrupted:
        state.close()
        summary.state_sha256 = state.previous_sha256
        err.write(f"ctvalidate: interrupted: the state file {state.path} is unchanged"
                  + (f" (SHA-256 {state.previous_sha256})" if state.previous_sha256 else "") + "\n")
        return
    try:
        summary.state_sha256 = state.commit()
    except Exception as exc:  # the verdict stands; the state is not updated, and that is said
        state.close()
        summary.state_sha256 = state.previous_sha256
        err.write(f"ctvalidate: error: the state file {state.path} could not be updated: {exc}\n")
        return
    err.write(f"ctvalidate: state {state.path} SHA-256 {summary.state_sha256} "
              "(record it; the next run takes it as --state-sha256)\n")


def _interrupted_before_start(req: ValidateRequest, out: IO[str], err: IO[str]) -> int:
    from datetime import datetime, timezone
    from .results import Summary
    summary = Summary(requested_start=req.config.start, requested_end=req.config.end or datetime.now(timezone.utc),
                      public_keys="file" if req.public_key_files else ("evidence" if req.source_dir else "aws"),
                      interrupted=True)
    err.write("ctvalidate: interrupted before any object was read\n")
    make_reporter(req.output, out, err, req.verbose).finish(summary)
    return summary.exit_code


def _finish_report(html, summary, err: IO[str], error: str | None = None) -> None:
    from .report.html import ReportError
    try:
        html.finish(summary, error=error)
    except ReportError as exc:  # the verdict stands; the missing report is said
        err.write(f"ctvalidate: error: {exc}\n")
