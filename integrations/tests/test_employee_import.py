"""Importing employees from CSV: upsert by email, per-row rejections, malformed files."""

import io

import pytest
from django.db import connection as connection_db
from django.test.utils import CaptureQueriesContext

from integrations.connect import connect_workspace
from integrations.models import AsanaMapping, AuditLog, Employee
from integrations.people.csv_import import (
    CsvImportError,
    apply_plan,
    import_employees_csv,
    plan_import,
)

pytestmark = pytest.mark.django_db


def _csv(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode())


@pytest.fixture
def connection(fake_asana):
    return connect_workspace(fake_asana.token, fake_asana.workspace_gid)


@pytest.fixture
def ada_gid(fake_asana) -> str:
    """Ada's user in the connected workspace (a GID must name one of its users)."""
    return fake_asana.add_user("Ada L.", "ada@example.com", [fake_asana.workspace_gid])


def test_import_creates_and_updates_by_email(django_user_model):
    boss = django_user_model.objects.create_user("boss")
    Employee.objects.create(name="Old Name", email="ada@example.com")
    report = import_employees_csv(
        _csv("email,name,manager\nADA@example.com,Ada Lovelace,boss\ngrace@example.com,Grace,\n")
    )
    assert (report.created, report.updated) == (["grace@example.com"], ["ada@example.com"])
    ada = Employee.objects.get(email="ada@example.com")
    assert (ada.name, ada.manager) == ("Ada Lovelace", boss)
    assert AuditLog.objects.filter(action="employees.import").exists()


def test_import_maps_gids_to_the_only_connection(connection, ada_gid):
    report = import_employees_csv(
        _csv(f"name,email,asana_user_gid\nAda,ada@example.com,{ada_gid}\n")
    )
    assert report.created == ["ada@example.com"]
    mapping = AsanaMapping.objects.get(connection=connection)
    assert (mapping.asana_user_gid, mapping.asana_user_name) == (ada_gid, "Ada L.")


def test_import_of_the_same_file_twice_changes_nothing(connection, ada_gid):
    text = f"email,name,asana_user_gid\nada@example.com,Ada,{ada_gid}\n"
    import_employees_csv(_csv(text))
    report = import_employees_csv(_csv(text))
    assert (report.created, report.updated, report.unchanged) == ([], [], ["ada@example.com"])


def test_import_rejects_bad_rows_with_reasons_and_keeps_good_ones(connection):
    other = Employee.objects.create(name="Taken", email="taken@example.com")
    AsanaMapping.objects.create(connection=connection, employee=other, asana_user_gid="999")
    report = import_employees_csv(
        _csv(
            "email,name,asana_user_gid,manager\n"
            "ok@example.com,Okay,,\n"
            "not-an-email,Bad Email,,\n"
            "m@example.com,Bad Manager,,nobody\n"
            "g@example.com,Bad Gid,12ab,\n"
            "t@example.com,Taken Gid,999,\n"
            "OK@example.com,Again,,\n"
        )
    )
    reasons = {r.line: r.reason for r in report.rejected}
    assert report.created == ["ok@example.com"]
    assert "not a valid email address" in reasons[3]
    assert "unknown manager 'nobody'" in reasons[4]
    assert "not a number" in reasons[5]
    assert "already mapped to Taken" in reasons[6]
    assert "duplicate of line 2" in reasons[7]
    assert set(Employee.objects.values_list("email", flat=True)) == {
        "taken@example.com",
        "ok@example.com",
    }


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"email,full_name\nada@example.com,Ada\n", "missing column(s) name"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8"),
        ("email,name\nada@example.com,Zoë\n".encode("latin-1"), "not UTF-8"),
        (b"", "the file is empty"),
        (b'email,name\n"ada@example.com,Ada\n', "not a valid CSV"),
        (b"\xef\xbb\xbf\r\n  \r\n", "the file is empty"),
        (b"email;name\r\nada@example.com;Ada\r\n", "separated by semicolons, not commas"),
        (b"email\tname\nada@example.com\tAda\n", "separated by tabs, not commas"),
        (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00", "a binary file, not CSV"),
        (b"<html><body>Sign in</body></html>\n", "missing column(s) email, name"),
    ],
    ids=[
        "missing-column",
        "binary",
        "latin-1",
        "empty",
        "broken-quotes",
        "only-a-bom-and-blank-lines",
        "semicolons",
        "tabs",
        "spreadsheet-xlsx",
        "html-page",
    ],
)
def test_malformed_file_raises_and_changes_nothing(content, expected):
    Employee.objects.create(name="Existing", email="existing@example.com")
    with pytest.raises(CsvImportError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        import_employees_csv(io.BytesIO(content))
    assert list(Employee.objects.values_list("email", flat=True)) == ["existing@example.com"]
    assert not AuditLog.objects.exists()


def test_gids_without_any_connection_are_refused_before_importing():
    with pytest.raises(CsvImportError, match="no Asana workspace is connected"):
        import_employees_csv(_csv("email,name,asana_user_gid\nada@example.com,Ada,123\n"))
    assert not Employee.objects.exists()


def test_import_reads_a_path_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "people.csv"
    path.write_bytes("\ufeffemail,name\nada@example.com,Ada\n".encode())
    assert import_employees_csv(path).created == ["ada@example.com"]


@pytest.mark.parametrize(
    "content",
    [
        b"email,name\r\nada@example.com,Ada\r\ngrace@example.com,Grace\r\n",
        b"\xef\xbb\xbfemail,name\r\nada@example.com,Ada\r\ngrace@example.com,Grace\r\n",
        b"\xef\xbb\xbfEmail , Name\nada@example.com,Ada\n\ngrace@example.com,Grace",
    ],
    ids=["windows-line-endings", "bom-and-windows-line-endings", "bom-spaces-no-final-newline"],
)
def test_import_reads_what_spreadsheets_export(content):
    report = import_employees_csv(io.BytesIO(content))
    assert report.created == ["ada@example.com", "grace@example.com"]
    assert report.rejected == []
    assert Employee.objects.get(email="grace@example.com").name == "Grace"


def test_an_email_longer_than_the_column_is_rejected_not_a_crash():
    long_email = "a" * 250 + "@example.com"
    report = import_employees_csv(_csv(f"email,name\n{long_email},Long\nok@example.com,Ok\n"))
    assert [r.line for r in report.rejected] == [2]
    assert "not a valid email address" in report.rejected[0].reason
    assert report.created == ["ok@example.com"]


def test_planning_writes_nothing_and_gives_each_row_its_outcome(connection, ada_gid):
    Employee.objects.create(name="Old", email="old@example.com")
    Employee.objects.create(name="Same", email="same@example.com")
    plan = plan_import(
        _csv(
            "email,name,asana_user_gid\nnew@example.com,New,\n"
            f"old@example.com,Renamed,{ada_gid}\nsame@example.com,Same,\nbad,Bad,\n"
        )
    )
    assert [(r.email, r.outcome, r.reason) for r in plan.rows[:3]] == [
        ("new@example.com", "create", ""),
        ("old@example.com", "update", "changes name, Asana user"),
        ("same@example.com", "unchanged", ""),
    ]
    assert plan.rows[3].outcome == "rejected" and "not a valid email" in plan.rows[3].reason
    assert Employee.objects.count() == 2 and not AsanaMapping.objects.exists()
    assert not AuditLog.objects.filter(action="employees.import").exists()


def test_the_import_writes_one_short_transaction_per_batch():
    rows = "".join(f"p{i}@example.com,Person {i}\n" for i in range(5))
    plan = plan_import(_csv("email,name\n" + rows))
    with CaptureQueriesContext(connection_db) as queries:
        apply_plan(plan, batch_rows=2)
    # Tests run inside a transaction, so each batch's atomic block is a savepoint.
    batches = [q for q in queries if q["sql"].startswith("SAVEPOINT")]
    assert len(batches) == 3
    assert Employee.objects.count() == 5


def test_a_batch_that_collides_with_a_change_made_meanwhile_is_rejected_whole():
    plan = plan_import(_csv("email,name\na@example.com,A\nb@example.com,B\nc@example.com,C\n"))
    Employee.objects.create(name="Someone else", email="c@example.com")
    report = apply_plan(plan, batch_rows=2)
    assert report.created == ["a@example.com", "b@example.com"]
    assert [r.line for r in report.rejected] == [4]
    assert "changed by someone else during the import" in report.rejected[0].reason
    assert Employee.objects.get(email="c@example.com").name == "Someone else"


def test_the_approver_column_marks_approvers_and_an_empty_cell_keeps_the_flag():
    Employee.objects.create(name="Ada", email="ada@example.com", is_approver=True)
    Employee.objects.create(name="Bob", email="bob@example.com", is_approver=True)
    report = import_employees_csv(
        _csv(
            "email,name,approver\nada@example.com,Ada,\nbob@example.com,Bob,no\n"
            "grace@example.com,Grace,yes\nalan@example.com,Alan,maybe\n"
        )
    )
    assert (report.unchanged, report.updated, report.created) == (
        ["ada@example.com"],
        ["bob@example.com"],
        ["grace@example.com"],
    )
    assert [str(r) for r in report.rejected] == [
        "line 5 (alan@example.com): approver must be yes or no (or empty), not 'maybe'"
    ]
    flags = dict(Employee.objects.values_list("email", "is_approver"))
    assert flags == {"ada@example.com": True, "bob@example.com": False, "grace@example.com": True}
