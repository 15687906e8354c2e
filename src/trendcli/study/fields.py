"""Typed reading of study-file values: every error names file:line, the key and what is allowed."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Callable, Sequence

from trendcli.errors import StudyError

#: Names that become file or directory names: letters, digits, '.', '_', '-'; no '..', no separators.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

MISSING: Any = object()


def check_name(value: str) -> str | None:
    """Why ``value`` cannot be a name that becomes a path, or None when it can."""
    if not NAME_PATTERN.match(value) or ".." in value:
        return ("names become file names: use letters, digits, '.', '_' and '-' (starting with a letter or "
                "digit), no '..', no '/' or '\\'")
    return None


class StudyText:
    """The study file's text, for locating keys; makes the errors."""

    def __init__(self, path: Path, text: str):
        self.path, self.lines = path, text.splitlines()

    def line_of(self, table: str, key: str | None, index: int = 0) -> int | None:
        header = re.compile(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?\s*(#.*)?$")
        seen = -1
        for i, line in enumerate(self.lines):
            if not header.match(line):
                continue
            seen += 1
            if seen != index:
                continue
            if key is None:
                return i + 1
            for j in range(i + 1, len(self.lines)):
                if re.match(r"^\s*\[", self.lines[j]):
                    break
                if re.match(rf"^\s*{re.escape(key)}\s*=", self.lines[j]):
                    return j + 1
            return i + 1
        return None

    def fail(self, table: str, key: str | None, message: str, index: int = 0) -> StudyError:
        line = self.line_of(table, key, index)
        where = f"{self.path}:{line}" if line else str(self.path)
        what = f"[{table}]" + (f".{key}" if key else "")
        return StudyError(f"{where}: {what}: {message}")


class Table:
    """One table of the study (``[study]`` or the i-th ``[[models]]``), read with type checks."""

    def __init__(self, text: StudyText, name: str, data: Any, index: int = 0, allowed: set[str] | None = None):
        self.text, self.name, self.index = text, name, index
        if not isinstance(data, dict):
            raise text.fail(name, None, f"expected a table, got {type(data).__name__}", index)
        self.data = data
        if allowed is not None:
            for key in data:
                if key not in allowed:
                    raise self.fail(key, f"unknown key; allowed: {', '.join(sorted(allowed))}")

    def fail(self, key: str | None, message: str) -> StudyError:
        return self.text.fail(self.name, key, message, self.index)

    def has(self, key: str) -> bool:
        return key in self.data

    def _raw(self, key: str, default: Any) -> Any:
        if key not in self.data:
            if default is MISSING:
                raise self.fail(None, f"missing required key {key!r}")
            return default
        return self.data[key]

    def string(self, key: str, default: Any = MISSING, choices: Sequence[str] | None = None,
               normalize: Callable[[str], str] | None = None) -> Any:
        value = self._raw(key, default)
        if value is default and key not in self.data:
            return value
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {value!r}")
        value = normalize(value) if normalize else value
        if choices is not None and value not in choices:
            raise self.fail(key, f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    def name_value(self, key: str, default: Any = MISSING) -> Any:
        value = self.string(key, default)
        if isinstance(value, str):
            why = check_name(value)
            if why:
                raise self.fail(key, f"{value!r} is not a valid name; {why}")
        return value

    def boolean(self, key: str, default: Any = MISSING) -> Any:
        value = self._raw(key, default)
        if key in self.data and not isinstance(value, bool):
            raise self.fail(key, f"expected true or false (unquoted), got {value!r}")
        return value

    def integer(self, key: str, default: Any = MISSING, minimum: int | None = None, maximum: int | None = None) -> Any:
        value = self._raw(key, default)
        if key not in self.data:
            return value
        return self.check_integer(key, value, minimum, maximum)

    def check_integer(self, key: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(key, f"expected an integer, got {value!r}")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise self.fail(key, f"expected an integer in {_range(minimum, maximum)}, got {value!r}")
        return value

    def number(self, key: str, default: Any = MISSING, low: float | None = None, high: float | None = None,
               low_open: bool = False) -> Any:
        value = self._raw(key, default)
        if key not in self.data:
            return value
        return self.check_number(key, value, low, high, low_open)

    def check_number(self, key: str, value: Any, low: float | None = None, high: float | None = None,
                     low_open: bool = False) -> float:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise self.fail(key, f"expected a number, got {value!r}")
        too_low = low is not None and (value <= low if low_open else value < low)
        if too_low or (high is not None and value > high):
            lo = "" if low is None else ("(" if low_open else "[") + f"{low:g}"
            hi = "" if high is None else f"{high:g}]"
            raise self.fail(key, f"expected a number in {lo or '(-inf'}, {hi or 'inf)'}, got {value!r}")
        return float(value)

    def names_in(self, key: str, known: Sequence[str], what: str, default: Any = MISSING, allow_all: bool = False) -> tuple[str, ...]:
        """A name or list of names, each one of ``known`` (``"all"`` = every one, where allowed)."""
        value = self._raw(key, default)
        if allow_all and value == "all":
            return tuple(known)
        items = value if isinstance(value, list) else [value]
        for item in items:
            if not isinstance(item, str):
                raise self.fail(key, f"expected {what} names, got {item!r}")
            if item not in known:
                raise self.fail(key, f"unknown {what} {item!r}; known: {', '.join(known) or '(none)'}")
        return tuple(items)


def _range(minimum: int | None, maximum: int | None) -> str:
    lo = "-inf" if minimum is None else str(minimum)
    hi = "inf" if maximum is None else str(maximum)
    return f"{lo}..{hi}"


def as_list(value: Any) -> list:
    return list(value) if isinstance(value, list) else [value]
