"""The library's log: each note a run keeps with its result is also logged on ``scdeep_core``.

Notes are data (saved in ``uns``, shown on the pages); the log lets a script or notebook see them
as they happen, with the standard :mod:`logging` machinery:

>>> import logging
>>> logging.basicConfig(level=logging.INFO)   # or logging.getLogger("scdeep_core").setLevel(...)

As a library should, ``scdeep_core`` adds only a ``NullHandler``; the CLI adds a handler that
prints ``note: ...`` and ``warning: ...`` on stderr.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("scdeep_core")
logger.addHandler(logging.NullHandler())


def note(notes: list[str], message: str, *, warning: bool = False) -> None:
    """Keep ``message`` in ``notes`` (it travels with the result) and log it (INFO, or WARNING)."""
    notes.append(message)
    logger.log(logging.WARNING if warning else logging.INFO, message)


def noted(message: str, *, warning: bool = False) -> list[str]:
    """A new notes list holding ``message``, logged as :func:`note` does."""
    notes: list[str] = []
    note(notes, message, warning=warning)
    return notes
