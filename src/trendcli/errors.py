"""Errors the library raises. The CLI turns each into one `error: ...` line and exit 1."""

from __future__ import annotations


class TrendError(Exception):
    """Base class: a problem the user can fix, described in one line."""


class UsageError(TrendError):
    """An invalid argument or value (a number out of range, a malformed option)."""


class UnknownNameError(TrendError):
    """A registry lookup for a name that no plugin provides."""

    def __init__(self, kind: str, name: str, known: list[str]):
        self.kind, self.name, self.known = kind, name, sorted(known)
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(self.known) or '(none)'}")


class DuplicateNameError(TrendError):
    """Two plugins register the same name for one kind."""


class DataNotFoundError(TrendError):
    """A dataset's files were not found; the message says where we looked and how to get them."""


class ModelFileError(TrendError):
    """A model directory is missing, incomplete, or does not match its recorded hash."""


class StoreError(TrendError):
    """An adversarial-set file is corrupt, foreign, or does not match its key."""


class IncompatibleModelsError(TrendError):
    """Models that must share a dataset / input shape do not."""


class StudyError(TrendError):
    """A study file is invalid; the message names the key (and line where known)."""


class OnnxExportError(TrendError):
    """An ensemble could not be exported, or an ONNX file is not a trendcli ensemble."""


class OutputExistsError(TrendError):
    """An output path holds something trendcli did not write, or a finished artifact without force."""


class FileAccessError(TrendError):
    """A path cannot be read or written (permissions, a read-only filesystem, a path of the wrong kind)."""
