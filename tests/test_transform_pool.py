"""The transform pool (flows/batch.py): a batch transformed in a worker process is the batch transformed in place,
a dead worker costs only speed, and a large run on threads transforms in the pool with the default run's facts."""

from __future__ import annotations

import hashlib
import logging
from contextlib import contextmanager
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from flows.batch import TransformPool, transform_batch
from transforms.schema import StagedFile
from transforms.settings import load_settings
from warehouse.snapshots import query

FACT_KEY = "SELECT doc_id, indicator, measure, period, kind, value, unit, start, \"end\", evidence, dq_status, dq_failed FROM facts ORDER BY ALL"


@contextmanager
def _untimed(stage: str):
    yield


def _batch(samples: Path) -> list[StagedFile]:
    files = []
    for p in sorted(samples.iterdir())[:3]:
        data = p.read_bytes()
        files.append(StagedFile(sha256=hashlib.sha256(data).hexdigest(), source_path=str(p), staged_path=str(p), n_bytes=len(data)))
    return files


@pytest.fixture(scope="module")
def pool():
    p = TransformPool(1)
    yield p
    p.close()


def test_a_batch_in_a_worker_is_the_batch_transformed_in_place(pool, samples, tmp_path):
    batch = _batch(samples)
    names = {f.sha256: [f.source_path] for f in batch}
    job = lambda parts: (batch, names, str(parts), "b000000", "v1", "run1", None)  # noqa: E731
    there = pool.run(*job(tmp_path / "there"))
    here = transform_batch(*job(tmp_path / "here"), timed=_untimed)
    assert set(there.pop("seconds")) == {"normalize", "extract", "spill"}
    assert there["facts"].num_rows > 20 and there["facts"].equals(here["facts"])
    assert {k: v for k, v in there.items() if k != "facts"} == {k: v for k, v in here.items() if k != "facts"}
    for table in ("documents", "document_text"):
        assert pq.read_table(tmp_path / "there" / f"{table}-b000000.parquet").equals(pq.read_table(tmp_path / "here" / f"{table}-b000000.parquet"))


def test_an_error_in_a_worker_is_raised_in_the_caller_and_the_worker_lives_on(pool, samples, tmp_path):
    missing = StagedFile(sha256="0" * 64, source_path="gone.txt", staged_path=str(tmp_path / "gone.txt"), n_bytes=1)
    with pytest.raises(FileNotFoundError):
        pool.run([missing], {}, str(tmp_path), "b000000", "v1", "run1", None)
    assert len(pool.workers) == 1 and pool.workers[0].alive


def test_a_dead_worker_leaves_the_batch_to_the_caller(samples, tmp_path, caplog):
    doomed = TransformPool(1)
    doomed.workers[0].proc.kill()
    doomed.workers[0].proc.wait()
    batch = _batch(samples)
    with caplog.at_level(logging.WARNING, logger="flows.batch"):
        got = doomed.run(batch, {}, str(tmp_path), "b000000", "v1", "run1", None)
    assert got is None and doomed.workers == [] and "in the flow's process" in caplog.text
    assert doomed.run(batch, {}, str(tmp_path), "b000001", "v1", "run1", None) is None, "no worker left: no wait"
    doomed.close()


@pytest.mark.e2e
def test_a_large_run_on_threads_transforms_in_the_pool_with_the_default_facts(prefect_harness, inbox, tmp_path, monkeypatch):
    from flows import batch as batch_module
    from flows import ingest as flow_module

    default = flow_module.ingest(inbox=str(inbox), warehouse=str(tmp_path / "here"), batch_size=2)
    sent, started = [], []
    real_run, real_start = TransformPool.run, flow_module.start_pool
    monkeypatch.setattr(flow_module, "POOL_MIN_DOCUMENTS", 0)
    monkeypatch.setattr(TransformPool, "run", lambda self, *job: sent.append(job[3]) or real_run(self, *job))
    monkeypatch.setattr(flow_module, "start_pool", lambda *a: started.append(real_start(*a)) or started[-1])
    pooled = flow_module.ingest(inbox=str(inbox), warehouse=str(tmp_path / "pool"), batch_size=2)
    assert len(started) == 1 and len(started[0].workers) == 0, "one pool for the run, ended when the transforms were"
    assert sorted(sent) == ["b000000", "b000001", "b000002"]
    assert pooled["documents"] == default["documents"] == 5 and pooled["facts_extracted"] == default["facts_extracted"]
    assert {"normalize", "extract"} <= set(pooled["stage_seconds"]), "the workers' stage times reach the summary"
    _, here = query(load_settings(warehouse=tmp_path / "here"), FACT_KEY)
    _, there = query(load_settings(warehouse=tmp_path / "pool"), FACT_KEY)
    assert len(here) > 50 and there == here
    assert batch_module.POOL_MIN_DOCUMENTS > 0


def test_the_validator_transforms_between_its_validations(samples, tmp_path):
    """The run's validator process is one of the pool's workers; ``lend`` keeps it out of the pool for a validation."""
    from flows.validator import ValidatorProcess

    validator = ValidatorProcess()
    try:
        pool = TransformPool(1, shared=validator)
        assert pool.workers == [validator], "one worker in all: the validator"
        batch = _batch(samples)
        names = {f.sha256: [f.source_path] for f in batch}
        there = pool.run(batch, names, str(tmp_path / "there"), "b000000", "v1", "run1", None)
        here = transform_batch(batch, names, str(tmp_path / "here"), "b000000", "v1", "run1", None, timed=_untimed)
        assert there.pop("seconds") and there["facts"].equals(here["facts"])
        with pool.lend(validator):
            assert pool._free == [], "lent: no batch goes to it meanwhile"
            assert validator.check_group(here["facts"], None, None)["checked"] == here["facts"].num_rows
        assert pool._free == [validator]
        pool.close()
        assert validator.alive, "the pool ends its own workers only: the validator is the run's to end"
    finally:
        validator.close()


@pytest.mark.e2e
def test_a_large_run_shares_its_validator_with_the_pool_and_loads_the_default_facts(prefect_harness, inbox, tmp_path, monkeypatch):
    from flows import ingest as flow_module

    default = flow_module.ingest(inbox=str(inbox), warehouse=str(tmp_path / "here"), batch_size=2)
    started = []
    real_start = flow_module.start_pool
    monkeypatch.setattr(flow_module, "POOL_MIN_DOCUMENTS", 0)
    monkeypatch.setattr(flow_module, "PROCESS_MIN_DOCUMENTS", 0)
    monkeypatch.setattr(flow_module, "start_pool", lambda *a: started.append(real_start(*a)) or started[-1])
    pooled = flow_module.ingest(inbox=str(inbox), warehouse=str(tmp_path / "pool"), batch_size=2)
    assert len(started) == 1 and started[0].shared is not None and started[0].shared.proc.returncode == 0
    assert pooled["facts_extracted"] == default["facts_extracted"]
    _, here = query(load_settings(warehouse=tmp_path / "here"), FACT_KEY)
    _, there = query(load_settings(warehouse=tmp_path / "pool"), FACT_KEY)
    assert len(here) > 50 and there == here


def test_the_flow_and_its_helper_processes_allocate_arrow_memory_with_the_c_library(prefect_harness, inbox, tmp_path):
    """mimalloc (Arrow's default here) keeps the pages a finished batch or validation group freed; govfacts' processes
    allocate with malloc, which ``give_back_memory`` trims (flows/child.use_system_allocator): a helper process from
    its start, the flow's process from a run's start."""
    import pyarrow as pa

    from flows import ingest as flow_module
    from flows.child import ChildProcess

    helper = ChildProcess("tests.pool_child")
    try:
        assert helper.call(("which pool?",)) == "system"
    finally:
        helper.close()
    pa.set_memory_pool(pa.mimalloc_memory_pool())
    assert pa.default_memory_pool().backend_name == "mimalloc"
    flow_module.ingest(inbox=str(inbox), warehouse=str(tmp_path / "wh"))
    assert pa.default_memory_pool().backend_name == "system"
