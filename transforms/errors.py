"""Errors named for what failed, each carrying a short reason code and what to do next."""

from __future__ import annotations


class GovfactsError(Exception):
    """Base of every error govfacts raises on purpose."""


class InputRejected(GovfactsError):
    """A file that cannot become a document: it is quarantined, never guessed at.

    ``reason`` is a stable machine code (``empty``, ``binary``, ``undecodable`` …);
    the message names the file and says what the user can do about it.
    """

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message
