"""Import employees from a CSV file (`email,name[,asana_user_gid][,manager]`), upserting by email.

A file that cannot be read as that CSV raises `CsvImportError` before anything is written;
a bad row is rejected with its reason while the good rows are imported, all in one
transaction.
"""

import csv
import io
import os
from dataclasses import dataclass, field
from typing import IO

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from integrations import audit
from integrations.models import AsanaConnection, AsanaMapping, Employee, gid_validator
from pilotsite.untrusted import ascii_lower

REQUIRED = ("email", "name")
OPTIONAL = ("asana_user_gid", "manager")
MAX_EMAIL = Employee._meta.get_field("email").max_length
HEADER_HINT = "the header must be `email,name` with optional `asana_user_gid` and `manager` columns"


class CsvImportError(Exception):
    """The file as a whole is unusable; nothing was imported."""


class RowRejected(Exception):
    pass


@dataclass
class RejectedRow:
    line: int
    email: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line} ({self.email or 'no email'}): {self.reason}"


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged, {len(self.rejected)} rejected"
        )


def _read_text(path_or_file: str | os.PathLike | IO) -> tuple[str, str]:
    if isinstance(path_or_file, str | os.PathLike):
        name = os.fspath(path_or_file)
        try:
            with open(name, "rb") as handle:
                data: str | bytes = handle.read()
        except OSError as exc:
            raise CsvImportError(f"cannot read {name}: {exc.strerror}") from None
    else:
        name = getattr(path_or_file, "name", "upload")
        data = path_or_file.read()
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CsvImportError(
                f"{name} is not UTF-8 text (invalid byte at position {exc.start}); "
                "save it as “CSV UTF-8” and try again"
            ) from None
    if "\x00" in data:
        raise CsvImportError(f"{name} is a binary file, not CSV; {HEADER_HINT}")
    return name, data


def _parse(text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise CsvImportError(f"not a valid CSV file (line {reader.line_num}: {exc})") from None
    if not any(header):
        raise CsvImportError(f"the file is empty; {HEADER_HINT}")
    if len(header) == 1 and (separator := next((s for s in ";\t" if s in header[0]), None)):
        # Spreadsheets in many locales export CSV with semicolons.
        name = "semicolons" if separator == ";" else "tabs"
        raise CsvImportError(
            f"the columns are separated by {name}, not commas: export the file again as "
            f"“CSV (comma delimited)”; {HEADER_HINT}"
        )
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if missing or unknown:
        problems = []
        if missing:
            problems.append("missing column(s) " + ", ".join(missing))
        if unknown:
            problems.append("unknown column(s) " + ", ".join(repr(c) for c in unknown))
        raise CsvImportError(f"{'; '.join(problems)}: {HEADER_HINT}")
    if len(set(header)) != len(header):
        raise CsvImportError(f"a column appears twice in the header; {HEADER_HINT}")
    return header, rows


def _resolve_connection(
    connection: AsanaConnection | None, wants_mapping: bool
) -> AsanaConnection | None:
    if connection is not None or not wants_mapping:
        return connection
    connections = list(AsanaConnection.objects.all()[:2])
    if not connections:
        raise CsvImportError(
            "the file has asana_user_gid values but no Asana workspace is connected: "
            "connect one first or remove that column"
        )
    if len(connections) > 1:
        raise CsvImportError(
            "the file has asana_user_gid values and several workspaces are connected: "
            "choose one (--workspace GID)"
        )
    return connections[0]


class _Importer:
    def __init__(self, connection: AsanaConnection | None) -> None:
        self.connection = connection
        self.report = ImportReport()
        self.seen_emails: dict[str, int] = {}
        self.seen_gids: dict[str, str] = {}
        self.managers: dict[str, AbstractBaseUser | None] = {}

    def manager(self, username: str) -> AbstractBaseUser:
        if username not in self.managers:
            user_model = get_user_model()
            self.managers[username] = user_model.objects.filter(
                **{user_model.USERNAME_FIELD: username}
            ).first()
        found = self.managers[username]
        if found is None:
            raise RowRejected(f"unknown manager {username!r}: it must be a username in this site")
        return found

    def check_gid(self, gid: str, email: str) -> None:
        try:
            gid_validator(gid)
        except ValidationError:
            raise RowRejected(f"asana_user_gid {gid!r} is not a number (digits only)") from None
        if self.seen_gids.get(gid, email) != email:
            raise RowRejected(f"Asana user {gid} is already given to {self.seen_gids[gid]} above")
        taken = (
            AsanaMapping.objects.filter(connection=self.connection, asana_user_gid=gid)
            .exclude(employee__email__iexact=email)
            .select_related("employee")
            .first()
        )
        if taken is not None:
            raise RowRejected(
                f"Asana user {gid} is already mapped to {taken.employee}; fix the GID, or "
                "remove that mapping in the admin first"
            )

    def row(self, line: int, values: dict[str, str]) -> None:
        email = ascii_lower(values["email"])
        try:
            validate_email(email)
            if len(email) > MAX_EMAIL:
                raise ValidationError("too long")
        except ValidationError:
            raise RowRejected(f"{values['email']!r} is not a valid email address") from None
        if email in self.seen_emails:
            raise RowRejected(f"duplicate of line {self.seen_emails[email]} (same email)")
        self.seen_emails[email] = line
        name = values["name"]
        if not name or len(name) > 200:
            raise RowRejected("the name must be 1 to 200 characters")
        manager = self.manager(values["manager"]) if values.get("manager") else None
        gid = values.get("asana_user_gid", "")
        if gid:
            self.check_gid(gid, email)
            self.seen_gids[gid] = email
        self.upsert(email, name, manager, gid)

    def upsert(self, email: str, name: str, manager: AbstractBaseUser | None, gid: str) -> None:
        employee = Employee.objects.filter(email__iexact=email).first()
        created = employee is None
        if created:
            employee = Employee(email=email)
        changed = created or employee.name != name
        employee.name = name
        if manager is not None and employee.manager_id != manager.pk:
            employee.manager, changed = manager, True
        if changed:
            employee.save()
        if gid:
            mapping = AsanaMapping.objects.filter(
                connection=self.connection, employee=employee
            ).first()
            if mapping is None:
                AsanaMapping.objects.create(
                    connection=self.connection, employee=employee, asana_user_gid=gid
                )
                changed = True
            elif mapping.asana_user_gid != gid:
                mapping.asana_user_gid, mapping.asana_user_name = gid, ""
                mapping.save(update_fields=["asana_user_gid", "asana_user_name"])
                changed = True
        if created:
            self.report.created.append(email)
        elif changed:
            self.report.updated.append(email)
        else:
            self.report.unchanged.append(email)


def import_employees_csv(
    path_or_file: str | os.PathLike | IO,
    *,
    connection: AsanaConnection | None = None,
    actor: AbstractBaseUser | None = None,
) -> ImportReport:
    """Upsert employees by email from the CSV; returns what was created, updated and rejected."""
    name, text = _read_text(path_or_file)
    header, rows = _parse(text)
    records = [
        (line, dict(zip(header, (cell.strip() for cell in row), strict=False)), len(row))
        for line, row in rows
    ]
    wants_mapping = any(values.get("asana_user_gid") for _, values, _ in records)
    importer = _Importer(_resolve_connection(connection, wants_mapping))
    with transaction.atomic():
        for line, values, width in records:
            try:
                if width > len(header):
                    raise RowRejected(f"{width} fields but the header has {len(header)}")
                values = {column: values.get(column, "") for column in header}
                with transaction.atomic():
                    importer.row(line, values)
            except RowRejected as exc:
                importer.report.rejected.append(
                    RejectedRow(line, values.get("email", ""), str(exc))
                )
        report = importer.report
        audit.record(
            "employees.import",
            target=os.path.basename(name),
            outcome="warning" if report.rejected else "ok",
            detail=report.summary()
            + "".join(f"\nrejected {rejected}" for rejected in report.rejected),
            actor=actor,
            connection=importer.connection,
        )
    return report
