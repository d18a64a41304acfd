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
    import subprocess  # noqa: PLC0415

    from prefect.server.api import server as prefect_server  # noqa: PLC0415
    from prefect.settings import get_current_settings  # noqa: PLC0415

    if get_current_settings().api.url:
        return
    parent = os.getpid()

    class DiesWithParent(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("preexec_fn", lambda: _die_with_parent(parent))
            super().__init__(*args, **kwargs)

    class Subprocess:
        """The ``subprocess`` module as Prefect's server module sees it: Popen with the parent-death signal."""

        Popen = DiesWithParent

        def __getattr__(self, name: str):
            return getattr(subprocess, name)

    prefect_server.subprocess = Subprocess()
    prefect_server.SubprocessASGIServer().start()


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
