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

Protocol: length-prefixed pickles over the child's stdin / a private duplicate of its
stdout (fd 1 itself is pointed at stderr, so whatever a library prints cannot corrupt
the channel). The child exits when its stdin closes, so it never outlives its parent.
"""

from __future__ import annotations

import logging
import os
import pickle
import struct
import subprocess
import sys
import threading
from typing import BinaryIO

import pandas as pd
import pyarrow as pa

log = logging.getLogger(__name__)

# Runs with fewer documents validate in place: the process pays off once the transforms outlast its
# warm-up (a Python start, the GX import and the suite build: ≈5 s, ≈300-400 reports of transforms).
PROCESS_MIN_DOCUMENTS = 400
_HEADER = struct.Struct("!Q")


def check_group(facts: pa.Table, published: pd.DataFrame | None, text_parts: list[str] | None) -> dict:
    """Run the GX suite on a group's facts (with ``fact_id``); status, failures, messages and result rows.

    ``text_parts``: the group's document_text parts, read one at a time to check evidence offsets.
    """
    from expectations.facts_suite import validate_facts  # noqa: PLC0415 (GX: imported where validation runs)
    from warehouse.texts import PartTexts  # noqa: PLC0415

    texts = PartTexts(text_parts) if text_parts is not None else None
    outcome = validate_facts(facts, published, texts)
    return dict(status=outcome.status, failed=outcome.failed, results=outcome.results, messages=outcome.messages)


# -- the wire ------------------------------------------------------------------------------------


def _send(out: BinaryIO, message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_HEADER.pack(len(data)))
    out.write(data)
    out.flush()


def _recv(inp: BinaryIO) -> object:
    """The next message, or None at end of stream."""
    head = inp.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return None
    size = _HEADER.unpack(head)[0]
    data = inp.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


class ValidatorGone(RuntimeError):
    """The validator process could not be started or died; the caller validates in place."""


class ValidatorProcess:
    """A child Python that imports GX, builds the suite at once, then validates the groups it is sent.

    Thread-safe: groups are validated one at a time, in the order they are sent.
    """

    def __init__(self) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        env.setdefault("GX_ANALYTICS_ENABLED", "False")
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "flows.validator"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, env=env, close_fds=True)
        except OSError as exc:
            raise ValidatorGone(f"cannot start the validator process ({exc})") from exc
        self._lock = threading.Lock()
        self.ready = False

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def check_group(self, facts: pa.Table, published: pd.DataFrame | None, text_parts: list[str] | None) -> dict:
        """``check_group`` run in the process; raise ``ValidatorGone`` when the process is not there."""
        with self._lock:
            try:
                _send(self.proc.stdin, (facts, published, text_parts))
                while True:
                    got = _recv(self.proc.stdout)
                    if got is None:
                        raise ValidatorGone(f"the validator process exited (code {self.proc.wait()})")
                    kind, value = got
                    if kind == "ready":
                        self.ready = True
                        continue
                    if kind == "error":
                        raise value
                    return value
            except (OSError, EOFError, ValueError, pickle.UnpicklingError) as exc:  # ValueError: closed pipe
                raise ValidatorGone(f"the validator process is gone ({type(exc).__name__}: {exc})") from exc

    def close(self, timeout: float = 10) -> None:
        """End the process: close its input (it exits at end of stream); kill it if it does not."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


def start_validator() -> ValidatorProcess | None:
    """A new validator process, or None (with a warning) when it cannot start: the run then validates in place."""
    try:
        return ValidatorProcess()
    except ValidatorGone as exc:
        log.warning("%s; validating in the flow's process", exc)
        return None


def check_group_anywhere(remote: ValidatorProcess | None, facts: pa.Table, published: pd.DataFrame | None,
                         text_parts: list[str] | None) -> dict:
    """``check_group`` in the validator process when there is one, else (or if it fails to answer) here."""
    if remote is not None:
        try:
            return remote.check_group(facts, published, text_parts)
        except ValidatorGone as exc:
            log.warning("%s; validating this group in the flow's process", exc)
    return check_group(facts, published, text_parts)


# -- the child -----------------------------------------------------------------------------------


def _serve() -> None:
    """The validator process: warm up, then answer each group until stdin closes.

    Ctrl-C at the terminal reaches the whole process group: the flow decides what happens, and this
    process ends when its input closes. A parent killed outright (``kill -9``) closes the pipes: the
    process then leaves quietly, since its answers have nobody to go to (no traceback for the user).
    """
    import signal  # noqa: PLC0415

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _answer()
    except (BrokenPipeError, ConnectionResetError, EOFError, pickle.UnpicklingError, struct.error):
        os._exit(0)


def _answer() -> None:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # print() and library chatter go to stderr, never into the channel
    sys.stdout = sys.stderr
    inp = sys.stdin.buffer
    from expectations.facts_suite import _validator  # noqa: PLC0415

    _validator()  # GX import and suite build, while the flow transforms its first batches
    _send(out, ("ready", os.getpid()))
    while (job := _recv(inp)) is not None:
        try:
            result = check_group(*job)
        except Exception as exc:  # noqa: BLE001 (sent back and re-raised by the flow, which names the group)
            try:
                pickle.dumps(exc)
            except Exception:  # noqa: BLE001 (an exception that cannot travel is sent as its text)
                exc = RuntimeError(f"{type(exc).__name__}: {exc}")
            _send(out, ("error", exc))
        else:
            _send(out, ("ok", result))
    os._exit(0)  # input closed: every answer is flushed; skip tearing down GX and pandas (≈0.3 s)


if __name__ == "__main__":
    _serve()
