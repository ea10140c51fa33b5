"""The class roster a TA gives for the LMS export: who is enrolled, and their ids in the LMS.

A roster is a UTF-8 CSV with a header row, in one of two shapes:

* **The course's own shape**, lower-case columns: ``student`` (required: the id the submissions use, i.e. the
  folder name ``submissions/<student>/``), and any of ``name``, ``canvas_id``, ``sis_user_id``, ``sis_login_id``,
  ``section`` (Canvas) and ``email``, ``username``, ``idnumber`` (Moodle). Other columns are ignored.
* **A Canvas gradebook export as is** (Grades > Export): recognised by its ``SIS Login ID`` column; ``Student``,
  ``ID``, ``SIS User ID``, ``SIS Login ID`` and ``Section`` are read as name, canvas_id, sis_user_id,
  sis_login_id and section, and its "Points Possible" row is skipped. The submissions' ids are then taken from
  ``SIS Login ID`` unless another column is named.

`key` (``--roster-key``) names the column holding the submissions' ids when it is not the default.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

FIELDS = ("name", "canvas_id", "sis_user_id", "sis_login_id", "section", "email", "username", "idnumber")
CANVAS_EXPORT = {"Student": "name", "ID": "canvas_id", "SIS User ID": "sis_user_id", "SIS Login ID": "sis_login_id",
                 "Section": "section"}


class RosterError(ValueError):
    """The roster cannot be used; the message says why."""


@dataclass(frozen=True)
class Enrolled:
    """One roster row: the submissions' id and the LMS ids known for the student."""

    student: str
    fields: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str:
        return self.fields.get(name, "")


def read_roster(path: Path, key: str | None = None) -> list[Enrolled]:
    """The roster's students in file order; RosterError for a missing file or key column, blank or repeated ids."""
    path = Path(path)
    if not path.is_file():
        raise RosterError(f"roster {path} not found")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise RosterError(f"roster {path} is empty")
    header = [h.strip() for h in rows[0]]
    canvas = "SIS Login ID" in header
    names = [CANVAS_EXPORT.get(h, h) if canvas else h.lower() for h in header]
    key = key or ("SIS Login ID" if canvas else "student")
    if key not in header and key.lower() not in header and key not in names:
        raise RosterError(f"roster {path.name} has no column {key!r} for the submissions' ids (its columns: "
                          f"{', '.join(header)}); name the right one with --roster-key")
    key_index = header.index(key) if key in header else (
        header.index(key.lower()) if key.lower() in header else names.index(key))
    enrolled, seen = [], set()
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row) or row[0].strip() == "Points Possible":
            continue
        row = row + [""] * (len(header) - len(row))
        student = row[key_index].strip()
        if not student:
            raise RosterError(f"roster {path.name} line {line}: no {key}")
        if student in seen:
            raise RosterError(f"roster {path.name} line {line}: {student} is listed twice")
        seen.add(student)
        values = {n: row[i].strip() for i, n in enumerate(names) if n in FIELDS}
        enrolled.append(Enrolled(student, values))
    if not enrolled:
        raise RosterError(f"roster {path.name} lists no students")
    return enrolled
