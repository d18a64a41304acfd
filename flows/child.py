"""A helper Python process of a flow run: started by the flow, sent jobs, gone when the flow's pipe closes.

The validator (flows/validator.py) and the transform workers (flows/batch.py) are such
processes: a child ``python -m <module>`` that warms up (imports, caches), announces
``("ready", pid)``, then answers each job with ``("ok", result)`` or ``("error", exc)``.

Protocol: length-prefixed pickles over the child's stdin / a private duplicate of its
stdout (fd 1 itself is pointed at stderr, so whatever a library prints cannot corrupt
the channel). The child exits when its stdin closes, so it never outlives its parent:
a run killed outright (``kill -9``) closes the pipes and its children leave quietly.

Whatever goes wrong with a child (it cannot start, it dies), the caller gets ``ChildGone``
and does the work in its own process: a child is an optimisation, never a dependency.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import threading
from typing import BinaryIO, Callable

_HEADER = struct.Struct("!Q")


def send(out: BinaryIO, message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_HEADER.pack(len(data)))
    out.write(data)
    out.flush()


def recv(inp: BinaryIO) -> object:
    """The next message, or None at end of stream."""
    head = inp.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return None
    size = _HEADER.unpack(head)[0]
    data = inp.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


class ChildGone(RuntimeError):
    """The child process could not be started or died; the caller does the work itself."""


class ChildProcess:
    """``python -m <module>`` serving jobs one at a time (thread-safe: callers take turns, in order)."""

    what = "helper"  # named in the messages ("the validator process exited ...")

    def __init__(self, module: str) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        env.setdefault("GX_ANALYTICS_ENABLED", "False")
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", module], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, env=env, close_fds=True)
        except OSError as exc:
            raise ChildGone(f"cannot start the {self.what} process ({exc})") from exc
        self._lock = threading.Lock()
        self.ready = False
        self._on_ready: list[Callable[[], None]] = []
        threading.Thread(target=self._await_ready, name=f"{self.what}-ready", daemon=True).start()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def when_ready(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the child has warmed up (at once if it has)."""
        self._on_ready.append(callback)
        if self.ready:
            callback()

    def _await_ready(self) -> None:
        """Read the child's ``ready`` (its warm-up done) as soon as it is sent, so callers can tell a warm child."""
        with self._lock:
            if self.ready:
                return
            try:
                got = recv(self.proc.stdout)
            except (OSError, EOFError, ValueError, pickle.UnpicklingError):
                return  # the first call finds out
            if got is None or got[0] != "ready":
                return
        self._mark_ready()

    def _mark_ready(self) -> None:
        self.ready = True
        for callback in list(self._on_ready):
            callback()

    def call(self, job: object) -> object:
        """Send ``job``, return the child's answer; raise the child's error, or ``ChildGone``."""
        with self._lock:
            try:
                send(self.proc.stdin, job)
                while True:
                    got = recv(self.proc.stdout)
                    if got is None:
                        raise ChildGone(f"the {self.what} process exited (code {self.proc.wait()})")
                    kind, value = got
                    if kind != "ready":
                        break
                    self._mark_ready()
            except (OSError, EOFError, ValueError, pickle.UnpicklingError) as exc:  # ValueError: closed pipe
                raise ChildGone(f"the {self.what} process is gone ({type(exc).__name__}: {exc})") from exc
        if kind == "error":
            raise value  # the job's own error (an OSError of the job is not the process gone): outside the pipe's handler
        return value

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


# -- the child -----------------------------------------------------------------------------------


def use_system_allocator() -> None:
    """Arrow allocates through the C library's ``malloc`` in govfacts' processes instead of its bundled mimalloc.

    mimalloc keeps the pages a finished batch or validation group freed (``release_unused`` hands back
    little of them); glibc's heap, trimmed by ``give_back_memory``, returns them. Measured at 10,000
    reports (the flow and its helpers at once, two runs each): 1,416-1,434 → 1,278-1,286 MB PSS, the flow
    process's peak 911-936 → 776-808 MB, at the same wall time. Buffers allocated before keep the pool
    they came from, so switching in a running process is safe.
    """
    import pyarrow as pa  # noqa: PLC0415

    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())


def give_back_memory() -> None:
    """Hand the memory a finished job freed back to the system, so a helper's RSS follows its work, not its history.

    A batch's texts and a group's frames are freed when the job ends, but glibc keeps the freed heap
    (and Arrow's pool its freed blocks) for reuse; beside the flow and a second helper on a small
    machine that retained memory is what tips a run over its budget.
    """
    import ctypes  # noqa: PLC0415

    import pyarrow as pa  # noqa: PLC0415

    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def serve(warm_up: Callable[[], None], answer: Callable[..., object]) -> None:
    """The child's main: warm up, say ready, then ``answer(*job)`` for each job until stdin closes.

    Ctrl-C at the terminal reaches the whole process group: the flow decides what happens, and this
    process ends when its input closes. A parent killed outright (``kill -9``) closes the pipes: the
    process then leaves quietly, since its answers have nobody to go to (no traceback for the user).
    """
    import signal  # noqa: PLC0415

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _loop(warm_up, answer)
    except (BrokenPipeError, ConnectionResetError, EOFError, pickle.UnpicklingError, struct.error):
        os._exit(0)


def _loop(warm_up: Callable[[], None], answer: Callable[..., object]) -> None:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # print() and library chatter go to stderr, never into the channel
    sys.stdout = sys.stderr
    inp = sys.stdin.buffer
    use_system_allocator()
    warm_up()  # while the flow does its first work
    send(out, ("ready", os.getpid()))
    while (job := recv(inp)) is not None:
        try:
            result = answer(*job)
        except Exception as exc:  # noqa: BLE001 (sent back and re-raised by the caller, which names the job)
            try:
                pickle.dumps(exc)
            except Exception:  # noqa: BLE001 (an exception that cannot travel is sent as its text)
                exc = RuntimeError(f"{type(exc).__name__}: {exc}")
            send(out, ("error", exc))
        else:
            send(out, ("ok", result))
            del result  # before giving memory back: the answer was the job's largest object
        give_back_memory()
    out.flush()
    os._exit(0)  # input closed: every answer is flushed; skip tearing down the libraries (≈0.3 s)
