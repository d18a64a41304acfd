"""Prefect runs embedded: its ephemeral local server, home inside the project directory (of govfacts.toml, else the working one), no analytics.

Must run before ``prefect`` is imported, because Prefect reads its settings at import.
"""

from __future__ import annotations

import os
from pathlib import Path

from transforms.settings import project_dir


def configure_prefect(home: Path | None = None) -> None:
    """Point Prefect at a local home and switch off everything that would call out."""
    os.environ.setdefault("PREFECT_HOME", str((home or project_dir() / ".prefect").resolve()))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_UI_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_API_HOST", "127.0.0.1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_RESULTS_PERSIST_BY_DEFAULT", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    # The embedded server is a subprocess; on a busy machine it takes longer than Prefect's default 20 s to answer.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")


def _die_with_parent(parent: int) -> None:
    """In a freshly forked child: ask Linux for SIGTERM when the parent dies (prctl PR_SET_PDEATHSIG)."""
    import ctypes  # noqa: PLC0415
    import signal  # noqa: PLC0415

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        return  # not Linux: the server is stopped at exit as Prefect does it
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def start_embedded_server() -> None:
    """Start Prefect's ephemeral server for this run now, in the calling (main) thread, tied to this process.

    Prefect starts it on first use and stops it at exit; a run killed with SIGKILL never reaches
    exit, and the server (uvicorn, ≈225 MB) would run on forever, one per killed run. Started here,
    its process carries a parent-death signal: whatever ends the run ends its server. (The signal
    follows the thread that started the child, hence the main thread.) Nothing to do when
    PREFECT_API_URL names a server of its own.
    """
    server = EmbeddedServer.launch()
    if server is not None:
        server.hand_to_prefect()


# What Prefect's ephemeral server needs in its environment beyond ours (prefect.server.api.server.SubprocessASGIServer).
_SERVER_ENV = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
# Work a one-run server does not need: registering Prefect's block types (and importing every installed Prefect
# collection, prefect-dask among them, to find them) costs ≈1 s of its start-up; a run uses no blocks. A user's
# own setting wins; `govfacts serve` starts a server of its own, which registers them.
_SERVER_SKIPS = {"PREFECT_API_BLOCKS_REGISTER_ON_START": "false", "PREFECT_SERVER_MEMOIZE_BLOCK_AUTO_REGISTRATION": "false"}
_PORTS = range(8000, 9000)  # where Prefect looks for a free port for its ephemeral server
_PORT_IN_USE = 3  # uvicorn's exit code when it cannot bind its port


def _free_port() -> int:
    """A port of 127.0.0.1 nobody listens on (the server picks another if it is taken meanwhile)."""
    import random  # noqa: PLC0415
    import socket  # noqa: PLC0415

    for _ in range(20):
        port = random.choice(_PORTS)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 8000 and 8999 for the ephemeral Prefect API server; set PREFECT_API_URL "
                       "to a running server (prefect server start)")


class EmbeddedServer:
    """Prefect's ephemeral API server, started before Prefect is even imported and handed to Prefect once it is.

    The server is a uvicorn subprocess that imports Prefect's server and creates (or migrates) its
    database: seconds. Prefect starts it on the first API call and waits, so a run used to pay
    importing Prefect, then the server's start-up, then the flow, one after the other. Launched
    first thing (``launch``), the server boots on one core while the run imports Prefect, the flow
    and Great Expectations on the other; ``hand_to_prefect`` then gives it to Prefect as its
    ephemeral server (the ``SubprocessASGIServer`` it would have started) and waits until it answers.
    The same command and environment as Prefect's own, plus the parent-death signal (see
    ``start_embedded_server``).
    """

    def __init__(self) -> None:
        self.port = _free_port()
        self.process = self._spawn()

    @classmethod
    def launch(cls) -> "EmbeddedServer | None":
        """Start the server now; None when PREFECT_API_URL names a server (call after ``configure_prefect``).

        Prefect is not imported yet in a command (that is the point), so only the environment is asked;
        a server named by a Prefect profile instead is found in ``hand_to_prefect``, which then stops this
        one. Where Prefect is already imported (tests under a Prefect test harness), Prefect is asked.
        """
        import sys  # noqa: PLC0415

        if os.environ.get("PREFECT_API_URL"):
            return None
        if "prefect.settings" in sys.modules:
            from prefect.settings import get_current_settings  # noqa: PLC0415

            if get_current_settings().api.url:
                return None
        return cls()

    def _spawn(self):
        import subprocess  # noqa: PLC0415
        import sys  # noqa: PLC0415
        from importlib.util import find_spec  # noqa: PLC0415

        parent = os.getpid()
        app_dir = Path(find_spec("prefect").origin).parent.parent  # what Prefect passes: prefect.__module_path__.parent
        env = {**os.environ, **_SERVER_ENV}
        for key, value in _SERVER_SKIPS.items():
            env.setdefault(key, value)
        return subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(app_dir), "--factory", "prefect.server.api.server:create_app",
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "error", "--lifespan", "on"],
            env=env, preexec_fn=lambda: _die_with_parent(parent))

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def stop(self) -> None:
        """End the server (a run that found nothing to do, or a configured PREFECT_API_URL after all)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except Exception:  # noqa: BLE001 (subprocess.TimeoutExpired: it did not stop, so it is killed)
                self.process.kill()
                self.process.wait()

    def release(self) -> None:
        """The flow is over: send Prefect's last log lines and events to the server, then let it shut down.

        A graceful stop of the server takes a second or more; asked now, it shuts down while the run
        writes its report, instead of at exit, after the summary. ``stop`` then waits for it.
        """
        from prefect.events.worker import EventsWorker  # noqa: PLC0415
        from prefect.logging.handlers import APILogWorker  # noqa: PLC0415

        if self.process.poll() is not None:
            return
        APILogWorker.drain_all(timeout=10, at_exit=False)
        EventsWorker.drain_all(timeout=10, at_exit=False)
        self.process.terminate()

    def hand_to_prefect(self, timeout: float | None = None) -> None:
        """Make this Prefect's ephemeral server and wait until it answers; stop it if Prefect has a server configured.

        Prefect's client asks ``SubprocessASGIServer()`` (one instance per process) for its server and
        starts it unless it is running: it finds this one running, at this port. Raises the
        RuntimeError Prefect raises when its server does not start in time (govfacts/failures.py
        explains it).
        """
        import time  # noqa: PLC0415

        import httpx  # noqa: PLC0415
        from prefect.server.api import server as prefect_server  # noqa: PLC0415
        from prefect.settings import get_current_settings  # noqa: PLC0415

        settings = get_current_settings()
        if settings.api.url:  # a profile names a server: Prefect uses it, not this one
            self.stop()
            return
        limit = timeout or settings.server.ephemeral.startup_timeout_seconds
        began = time.monotonic()
        with httpx.Client() as client:
            while True:
                if self.process.poll() == _PORT_IN_USE:  # taken between the check and the bind: another port
                    self.port = _free_port()
                    self.process = self._spawn()
                elif self.process.poll() is not None:
                    from transforms.errors import GovfactsError  # noqa: PLC0415

                    raise GovfactsError(f"Prefect's embedded server stopped (exit code {self.process.returncode}) before it "
                                        "answered; nothing was run or committed. Its messages are above; re-run, or set "
                                        "PREFECT_API_URL to a running server (prefect server start).")
                try:
                    if client.get(f"{self.api_url}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() - began > limit:
                    self.stop()
                    raise RuntimeError(f"Timed out while attempting to connect to ephemeral Prefect API server ({limit:.0f} s).")
                time.sleep(0.05)
        server = prefect_server.SubprocessASGIServer()
        if server.running:  # Prefect already started one in this process: keep it, ours is not needed
            self.stop()
            return
        server.port, server.server_process, server.running = self.port, self.process, True
        import atexit  # noqa: PLC0415

        atexit.register(server.stop)


def console_without_tracebacks() -> None:
    """Prefect's terminal log lines keep their message but lose their traceback.

    When a run stops on a failure of the environment (disk full, a read-only warehouse), Prefect
    logs the exception with its whole stack to the terminal, and then govfacts says in one line what
    happened and what to do: the user saw a traceback first. The stack still goes to the run's
    logs on the Prefect server (``govfacts runs --logs``), and an error govfacts cannot explain is
    still raised in full by the CLI. Applied to the handler class, because Prefect sets its logging
    up again when a run starts (new handler objects).
    """
    from prefect.logging.handlers import PrefectConsoleHandler  # noqa: PLC0415

    if getattr(PrefectConsoleHandler, "_govfacts_without_tracebacks", False):
        return
    original = PrefectConsoleHandler.format

    def format(self, record):  # noqa: A001 (logging.Handler.format)
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            return original(self, record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved

    PrefectConsoleHandler.format = format
    PrefectConsoleHandler._govfacts_without_tracebacks = True
