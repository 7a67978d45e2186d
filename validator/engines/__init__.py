"""Drivers of the same pipeline: where the per-object work (fetch + verify a digest, hash a log) runs.

The pipeline (validator.pipeline.Validation) does discovery, chain linking, gaps and the
classification of unlisted log files itself, on the driver; an engine only maps the two
per-object checks over a list, returning results in input order:

- `local` (default): the run's own bounded thread pool;
- `dask`: partitions on a Dask distributed cluster (validator.engines.cluster), workers
  reading storage with their own credentials.
"""

from __future__ import annotations

from .local import Engine, LocalEngine

ENGINES = ("local", "dask")


def make_engine(kind: str, scheduler: str | None = None, profile: str | None = None) -> Engine:
    """The engine a request names. `dask` without a scheduler address starts a LocalCluster here.

    Raises ConfigError when Dask is not installed or the scheduler cannot be reached."""
    if kind == "local":
        return LocalEngine()
    if kind == "dask":
        from .cluster import DaskEngine
        return DaskEngine.connect(scheduler, profile=profile)
    from ..errors import ConfigError
    raise ConfigError(f"unknown engine {kind!r} (one of {', '.join(ENGINES)})")


__all__ = ["ENGINES", "Engine", "LocalEngine", "make_engine"]
