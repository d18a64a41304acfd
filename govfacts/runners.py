"""The Prefect task runner a run uses, chosen by a setting (``task_runner``).

* ``threads`` (default): ``ThreadPoolTaskRunner``. No start-up cost, no pickling. Threads
  share the GIL, so a run of a few hundred new reports or more sends its CPU-bound work
  to helper processes the flow starts itself (flows/batch.py: ``max_workers`` transform
  workers, one of them the validator process), and the daily trickle of new reports runs
  in the flow's process without starting any.
* ``processes``: ``ProcessPoolTaskRunner`` (Prefect 3.8), one spawned Python per
  worker, for a backlog on one machine: the CPU-bound stages use every core.
* ``dask``: ``prefect_dask.DaskTaskRunner`` on an existing Dask cluster given by
  ``dask_address`` (``tcp://scheduler:8786``); without an address, a ``LocalCluster``
  of ``max_workers`` single-threaded worker processes.

With processes or Dask, task arguments and results cross process boundaries, so
nothing unpicklable may travel: OpenCC converters are built lazily in each process
(``transforms.normalize.converter`` is an ``lru_cache`` getter), and batches write
their output to Parquet parts on the shared file system rather than shipping it back.
"""

from __future__ import annotations

from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner

from transforms.settings import Settings

TASK_RUNNERS = ("threads", "processes", "dask")


def make_task_runner(settings: Settings) -> TaskRunner:
    """A fresh task runner for ``settings.task_runner``; raise naming the setting when it is unknown."""
    kind = settings.task_runner
    workers = max(1, settings.max_workers)
    if kind == "threads":
        return ThreadPoolTaskRunner(max_workers=workers)
    if kind == "processes":
        return ProcessPoolTaskRunner(max_workers=workers)
    if kind == "dask":
        from prefect_dask import DaskTaskRunner  # noqa: PLC0415 (imports distributed: only when asked for)

        if settings.dask_address:
            return DaskTaskRunner(address=settings.dask_address)
        return DaskTaskRunner(cluster_kwargs=dict(n_workers=workers, threads_per_worker=1, processes=True,
                                                  dashboard_address=None))
    raise ValueError(f"unknown task_runner {kind!r}: choose one of {', '.join(TASK_RUNNERS)} "
                     "(GOVFACTS_TASK_RUNNER or --task-runner)")
