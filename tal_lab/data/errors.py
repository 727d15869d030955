"""Problems found in a dataset: one record type for errors and warnings, and the exceptions.

Every message names the file and, where there is one, the video, so that a user with 412
feature files knows which one to look at. :mod:`tal_lab.data.validate` collects all problems
of a folder at once; the datasets raise :class:`DataError` with the errors they meet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal

__all__ = ["DataError", "DataFileNotFoundError", "Problem", "raise_errors", "format_problems"]

Severity = Literal["error", "warning"]

# How many problems an exception message lists before it summarises the rest.
MAX_LISTED_PROBLEMS = 20
# Problem codes that mean "a file is not there" (raised as DataFileNotFoundError).
MISSING_FILE_CODES = frozenset({"missing_json", "missing_feat_folder", "missing_file"})


class DataError(ValueError):
    """Invalid dataset content (annotation JSON or feature file); the message names file and video."""


class DataFileNotFoundError(DataError, FileNotFoundError):
    """A dataset file (annotation JSON, feature folder or feature file) does not exist."""


@dataclass(frozen=True)
class Problem:
    """One problem of a dataset.

    Attributes:
        severity: 'error' (loading or training would fail or be silently wrong) or 'warning'
            (loadable, but probably not what the user meant).
        code: a short stable name of the kind of problem (e.g. 'missing_file', 'nan', 'dim'),
            for programs and tests; the message is for people.
        file: the file the problem is in (annotation JSON or feature file).
        video_id: the video concerned, or None for file-level problems.
        message: what is wrong, with the values involved.
    """

    severity: Severity
    code: str
    file: str
    video_id: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}" + (f" (video '{self.video_id}')" if self.video_id is not None else "")
        return f"{self.severity}: {where}: {self.message}"


def format_problems(problems: Iterable[Problem], limit: int = MAX_LISTED_PROBLEMS) -> str:
    """One line per problem, at most ``limit`` lines, then a count of the rest."""
    problems = list(problems)
    lines = [str(p) for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"... and {len(problems) - limit} more")
    return "\n".join(lines)


def raise_errors(problems: Iterable[Problem], context: str) -> None:
    """Raise one DataError listing every error-severity problem (warnings are ignored).

    Raises:
        DataFileNotFoundError: when every error is a missing file.
        DataError: otherwise, when there is at least one error.
    """
    errors = [p for p in problems if p.severity == "error"]
    if not errors:
        return
    text = f"{context}: {len(errors)} problem(s)\n{format_problems(errors)}"
    if all(p.code in MISSING_FILE_CODES for p in errors):
        raise DataFileNotFoundError(text)
    raise DataError(text)
