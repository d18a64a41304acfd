"""The validator process (flows/validator.py): the same outcome as validating in place, errors travel back,
a dead process is replaced by validating in place, and a large run on threads uses it.

One process serves the module (it imports GX and builds the suite once, ≈4 s of a second core).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow as pa
import pytest

from expectations.facts_suite import build_checks
from flows.validator import ValidatorProcess, check_group, check_group_anywhere
from transforms.settings import load_settings
from transforms.extract import extract_document
from transforms.normalize import normalize_report
from transforms.schema import facts_to_table, with_fact_ids
from warehouse.parts import part_path, write_part


def _comparable(result: dict) -> dict:
    """A validation outcome without what differs between two GX contexts (generated expectation ids)."""
    def strip(o):
        if isinstance(o, dict):
            return {k: strip(v) for k, v in o.items() if k != "id"}
        if isinstance(o, list):
            return [strip(v) for v in o]
        return o

    rows = [dict(r, gx_result=strip(json.loads(r["gx_result"])) if r["gx_result"] else None) for r in result["results"]]
    return dict(status=result["status"], failed=result["failed"], messages=result["messages"], results=rows)


@pytest.fixture(scope="module")
def group(samples: Path, tmp_path_factory) -> tuple[pa.Table, list[str]]:
    """Facts of two sample reports (with fact ids) and the document_text part holding their texts."""
    parts = tmp_path_factory.mktemp("parts")
    docs = []
    for p in sorted(samples.iterdir())[:2]:
        docs.append((p.stem, normalize_report(p.read_bytes(), str(p))))
    facts = facts_to_table([f for doc_id, norm in docs for f in extract_document(norm, doc_id)])
    write_part(parts, "document_text", "b0", pa.table({"doc_id": [d for d, _ in docs], "text": [n.text for _, n in docs],
                                                       "raw_text": [n.raw_text for _, n in docs]}))
    return with_fact_ids(facts), [str(part_path(parts, "document_text", "b0"))]


@pytest.fixture(scope="module")
def process():
    p = ValidatorProcess()
    yield p
    p.close()


def test_the_process_gives_the_outcome_of_validating_in_place(process, group):
    facts, texts = group
    remote = process.check_group(facts, None, texts)
    assert process.ready, "the process announces that GX and the suite are ready before its first answer"
    here = check_group(facts, None, texts)
    assert here["checked"] == facts.num_rows > 20
    assert 0 < len(here["status"]) < facts.num_rows and set(here["status"].values()) <= {"warning", "error"}, \
        "only the facts that failed something are named"
    assert here["failed"].keys() == here["status"].keys() and all(here["failed"].values())
    assert _comparable(remote) == _comparable(here)


def test_an_error_in_the_process_is_raised_in_the_caller_and_the_process_lives_on(process, group):
    with pytest.raises(KeyError):
        process.check_group(pa.table({"no_fact_id": [1]}), None, None)
    assert process.alive
    facts, texts = group
    assert process.check_group(facts, None, texts)["checked"] == facts.num_rows


def test_a_dead_process_is_replaced_by_validating_in_place(group, caplog):
    facts, texts = group
    dead = ValidatorProcess()
    dead.proc.kill()
    dead.proc.wait()
    with caplog.at_level(logging.WARNING, logger="flows.validator"):
        got = check_group_anywhere(dead, facts, None, texts)
    dead.close()
    assert "validator process" in caplog.text and "in the flow's process" in caplog.text
    assert _comparable(got) == _comparable(check_group(facts, None, texts))


@pytest.mark.e2e
def test_a_large_run_on_threads_validates_in_the_process_with_the_same_outcome(prefect_harness, inbox, tmp_path, monkeypatch):
    """The flow sends its groups to the validator process and loads what it decided (equality with validating
    in place is the first test's)."""
    from flows import ingest as flow_module
    from flows import validator as validator_module
    from warehouse.snapshots import query

    sent = []
    real = ValidatorProcess.check_group
    monkeypatch.setattr(flow_module, "PROCESS_MIN_DOCUMENTS", 0)
    monkeypatch.setattr(ValidatorProcess, "check_group", lambda self, *a: sent.append(a[0].num_rows) or real(self, *a))
    started = []
    real_start = validator_module.start_validator
    monkeypatch.setattr(flow_module, "start_validator", lambda: started.append(real_start()) or started[-1])
    summary = flow_module.ingest(inbox=str(inbox), warehouse=str(tmp_path / "wh"), batch_size=2)
    assert len(started) == 1 and started[0].proc.returncode == 0, "one process for the run, ended before the load"
    assert sent and sum(sent) == summary["facts_extracted"] > 50
    assert summary["stage_seconds"]["validate"][1] < summary["stage_seconds"]["validate"][0], "GX ran elsewhere"
    settings = load_settings(warehouse=tmp_path / "wh")
    _, rows = query(settings, "SELECT count(*), count(dq_status), count(*) FILTER (WHERE dq_status = 'passed') FROM facts")
    assert rows[0][0] == rows[0][1] == summary["facts_extracted"] and rows[0][2] > 0
    _, dq = query(settings, "SELECT count(*) FROM dq_results")
    assert dq[0][0] == len(build_checks())


def test_closing_ends_the_process(process):
    process.close()
    assert process.proc.returncode == 0, "the process exits on its own when its input closes"
