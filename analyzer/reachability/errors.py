"""The one error type of the analyzer: bad input, reported with file and object, exit status 2."""

from __future__ import annotations


class InputError(Exception):
    """Input the analyzer cannot interpret; the message names the file and the object."""

    def __init__(self, message: str, *, source: str = "", obj: str = "") -> None:
        self.source = source
        self.obj = obj
        prefix = ": ".join(part for part in (source, obj) if part)
        super().__init__(f"{prefix}: {message}" if prefix else message)
