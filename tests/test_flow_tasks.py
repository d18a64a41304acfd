"""The flow's tasks retry what can pass on its own, and only that."""

from __future__ import annotations

import pytest

from transforms.stage import StageResult, StagingError


def test_stage_retries_an_io_error_but_not_a_staging_error(prefect_harness, tmp_path, monkeypatch):
    """A StagingError says the staging area cannot be written: the same every time, so it fails at once."""
    from prefect import flow

    from flows import ingest as flow_module

    @flow
    def staging_only(inbox: str, staging: str) -> StageResult:
        return flow_module.stage(inbox, staging)

    calls: list[str] = []

    def unwritable(inbox, staging, max_bytes):
        calls.append("unwritable")
        raise StagingError(f"cannot write the staging area {staging} (read-only file system); make the warehouse directory writable")

    monkeypatch.setattr(flow_module, "stage_inbox", unwritable)
    with pytest.raises(StagingError, match="cannot write the staging area"):
        staging_only(str(tmp_path / "inbox"), str(tmp_path / "staging"))
    assert calls == ["unwritable"], "a deterministic staging error is not retried"

    calls.clear()

    def flaky(inbox, staging, max_bytes):
        calls.append("flaky")
        if len(calls) == 1:
            raise OSError(5, "Input/output error")
        return StageResult(files_in=0)

    monkeypatch.setattr(flow_module, "stage_inbox", flaky)
    assert staging_only(str(tmp_path / "inbox"), str(tmp_path / "staging")) == StageResult(files_in=0)
    assert calls == ["flaky", "flaky"], "an I/O error is retried"


def test_govfacts_run_runs_the_flow_without_heartbeats_and_leaves_the_setting_alone(prefect_harness, tmp_path, monkeypatch):
    """A finished run would otherwise wait up to a second for Prefect's heartbeat thread to wake up."""
    from prefect.settings import get_current_settings

    from flows import ingest as flow_module
    from transforms.settings import load_settings

    seen = []
    real = flow_module.stage_inbox
    monkeypatch.setattr(flow_module, "stage_inbox", lambda *a: seen.append(get_current_settings().flows.heartbeat_frequency) or real(*a))
    before = get_current_settings().flows.heartbeat_frequency
    (tmp_path / "inbox").mkdir()
    summary = flow_module.flow_for(load_settings())(inbox=str(tmp_path / "inbox"), warehouse=str(tmp_path / "wh"))
    assert seen == [None] and summary["files_in"] == 0 and summary["changed"] is False
    assert get_current_settings().flows.heartbeat_frequency == before is not None


def test_every_task_can_travel_to_a_worker_process():
    """The processes and Dask runners pickle each task's function by value (the module attribute is the Task):
    module state it refers to directly (a lock, a validator process) would have to travel with it and cannot."""
    import cloudpickle

    from flows import ingest as flow_module

    for task in (flow_module.stage, flow_module.plan, flow_module.transform, flow_module.validate,
                 flow_module.spill_facts, flow_module.load, flow_module.current):
        assert callable(cloudpickle.loads(cloudpickle.dumps(task.fn))), task.name


def test_on_a_process_runner_an_unchanged_run_submits_nothing(prefect_harness, tmp_path, monkeypatch):
    """Planning is a quick query: on the threads runner it overlaps staging; a process worker would
    first pay seconds of start-up for it (an unchanged re-run took 10 s instead of 1)."""
    from prefect.task_runners import ProcessPoolTaskRunner

    from flows import ingest as flow_module
    from transforms.settings import load_settings

    submitted = []
    real_submit = ProcessPoolTaskRunner.submit
    monkeypatch.setattr(ProcessPoolTaskRunner, "submit", lambda self, task, *a, **kw: submitted.append(task.name) or real_submit(self, task, *a, **kw))
    monkeypatch.setenv("GOVFACTS_TASK_RUNNER", "processes")
    (tmp_path / "inbox").mkdir()
    summary = flow_module.flow_for(load_settings())(inbox=str(tmp_path / "inbox"), warehouse=str(tmp_path / "wh"))
    assert summary["files_in"] == 0 and summary["changed"] is False
    assert summary["task_runner"] == "ProcessPoolTaskRunner"
    assert submitted == []


@pytest.mark.parametrize("batches,per_group", [(0, 40), (1, 40), (20, 40), (40, 40), (41, 40), (79, 40), (200, 40), (1200, 40),
                                               (200, 1), (5, 2), (7, 3)])
def test_validation_groups_cover_every_batch_once_and_end_small(batches, per_group):
    """Full groups first, then smaller ones, so the group GX checks after the last transform — the tail — is a few batches."""
    from flows.ingest import group_sizes

    sizes = group_sizes(batches, per_group)
    assert sum(sizes) == batches and all(s >= 1 for s in sizes)
    assert all(s <= per_group for s in sizes[:-1]) and sizes[:-1] == sorted(sizes[:-1], reverse=True)
    if batches >= 2 * per_group:
        assert sizes[0] == per_group, "a large run keeps GX's fixed cost rare: full groups"
    if batches >= per_group >= 10:
        assert sizes[-1] <= per_group // 4, "the tail is a fraction of a group"
    assert group_sizes(batches, per_group) == sizes, "the same run is grouped the same way every time"


@pytest.mark.parametrize("todo,workers,given,expected", [
    (10, 2, None, 25), (1000, 2, None, 63), (10000, 2, None, 100), (100000, 8, None, 100), (3000, 8, None, 47),
    (10000, 2, 7, 7), (10, 2, 50, 50)])
def test_batches_are_sized_to_the_run_unless_the_setting_says(todo, workers, given, expected):
    """Large runs: large batches (Prefect's cost per task); small ones: enough batches for every worker to the end."""
    from flows.ingest import batch_size_for
    from transforms.settings import load_settings

    assert batch_size_for(load_settings(max_workers=workers, batch_size=given), todo) == expected
