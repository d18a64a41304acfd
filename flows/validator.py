"""Validation of a group of facts, in the calling process or in a validator process of its own.

Why a process: with the default task runner (threads) every task of a run shares one
interpreter lock, so the GX work of a run (importing GX and building the suite, ≈3 s;
then ≈3-4 s per validation group, most of it GX's fixed cost per expectation, whatever
the group's size) is added to the transform work on the same core while the machine's other
core idles. A validator process imports GX and builds the suite while the first batches
are transformed, validates each group while the next batches are transformed, and keeps
GX's ≈250 MB and its garbage-collection work out of the flow's process. Facts travel to
it as Arrow tables (pickled buffers), texts are read there from the group's parts.

The flow starts one per run, only on the threads runner and for runs of at least
``PROCESS_MIN_DOCUMENTS`` documents (a few reports validate faster in place than a new
Python starts), and ends it once the run's last group is validated, before the load, so
its memory is not held beside the load's. Whatever goes wrong with the process (it cannot
start, it dies), the group is validated in the calling process instead: the process is an optimisation, never a
dependency. The decision to validate, and every result, is the same in both places
(``check_group`` runs in either).

Between two groups it transforms batches like any transform worker (flows/batch.py: the pool
lends it out for a validation), so a run on two cores has two busy helper processes, not three.

The process itself is a ``flows.child.ChildProcess`` (the wire, start-up and shutdown are there).
"""

from __future__ import annotations

import gc
import logging

import pyarrow as pa

from flows.child import ChildGone, ChildProcess, serve

log = logging.getLogger(__name__)

# Runs with fewer documents validate in place: the process pays off once the transforms outlast its
# warm-up (a Python start, the GX import and the suite build: ≈5 s, ≈300-400 reports of transforms).
PROCESS_MIN_DOCUMENTS = 400


def check_group(facts: pa.Table, published: pa.Table | None, text_parts: list[str] | None) -> dict:
    """Run the GX suite on a group's facts (with ``fact_id``): how many were checked, the status, failures and
    messages of those that failed an expectation (a fact not named passed), and the result rows.

    ``text_parts``: the group's document_text parts, read one at a time to check evidence offsets.
    """
    from expectations.facts_suite import validate_facts  # noqa: PLC0415 (GX: imported where validation runs)
    from warehouse.texts import PartTexts  # noqa: PLC0415

    texts = PartTexts(text_parts) if text_parts is not None else None
    outcome = validate_facts(facts, published, texts)
    # only the facts that failed something travel back: a group's ≈40,000 "passed" entries cost the flow ≈0.25 s
    # a thousand reports to unpickle, for what ``publish_facts`` reads as the default
    flagged = [i for i, s in outcome.status.items() if s != "passed"]
    return dict(checked=len(outcome.status), status={i: outcome.status[i] for i in flagged},
                failed={i: outcome.failed[i] for i in flagged}, messages={i: outcome.messages[i] for i in flagged if outcome.messages[i]},
                results=outcome.results)


TRANSFORM = "transform"  # first item of a job that is a batch to transform (flows/batch.py), not a group to validate
ValidatorGone = ChildGone  # the validator process could not be started or died; the caller validates in place


class ValidatorProcess(ChildProcess):
    """A child Python that imports GX, builds the suite at once, then validates the groups it is sent.

    Thread-safe: groups are validated one at a time, in the order they are sent.
    """

    what = "validator"

    def __init__(self) -> None:
        super().__init__("flows.validator")

    def check_group(self, facts: pa.Table, published: pa.Table | None, text_parts: list[str] | None) -> dict:
        """``check_group`` run in the process; raise ``ValidatorGone`` when the process is not there."""
        return self.call((facts, published, text_parts))

    def transform(self, job: tuple) -> dict:
        """A batch transformed in the process between two validations (``flows.batch.TransformPool``'s shared worker)."""
        return self.call((TRANSFORM, *job))


def start_validator() -> ValidatorProcess | None:
    """A new validator process, or None (with a warning) when it cannot start: the run then validates in place."""
    try:
        return ValidatorProcess()
    except ValidatorGone as exc:
        log.warning("%s; validating in the flow's process", exc)
        return None


def check_group_anywhere(remote: ValidatorProcess | None, facts: pa.Table, published: pa.Table | None,
                         text_parts: list[str] | None) -> dict:
    """``check_group`` in the validator process when there is one, else (or if it fails to answer) here."""
    if remote is not None:
        try:
            return remote.check_group(facts, published, text_parts)
        except ValidatorGone as exc:
            log.warning("%s; validating this group in the flow's process", exc)
    return check_group(facts, published, text_parts)


# -- the child -----------------------------------------------------------------------------------


def _warm_up() -> None:
    from expectations.facts_suite import _validator  # noqa: PLC0415

    _validator()  # GX import and suite build, while the flow transforms its first batches
    # GX's modules and the suite are a few hundred thousand objects that live as long as the process; every full
    # collection set off by a group's allocations walked them all. Frozen, they are left out (a 2,000-report group
    # validates in 1.85 s instead of 2.13 s).
    gc.freeze()


def _answer(*job) -> dict:
    if job and isinstance(job[0], str) and job[0] == TRANSFORM:
        from flows.batch import run_in_child  # noqa: PLC0415 (the transforms: imported on the first batch)

        return run_in_child(*job[1:])
    return check_group(*job)


if __name__ == "__main__":
    serve(_warm_up, _answer)
