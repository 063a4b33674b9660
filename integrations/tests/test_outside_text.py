"""Text from Asana (task names, and what an executor makes of them) written to the log or
the terminal cannot forge a log line or send terminal escape codes."""

import io
import logging

import pytest
from django.core.management import call_command

from integrations.tests.pipeline_fixtures import process, tagged
from pilotsite.untrusted import printable

FORGED = "2026-11-30 08:00:00,000 ERROR django.security: forged"
# A line break, then a line that looks like ours; a terminal title change; clear screen.
HOSTILE_NAME = f"Fix the build\n{FORGED}\x1b]0;owned\x07\x1b[2J\r"


def test_task_name_in_a_log_line_cannot_forge_lines_or_escape_codes(
    console, connection, pilot, executor
):
    gid = tagged(pilot, HOSTILE_NAME)
    process(connection, gid)  # the executor's summary quotes the task name; it is logged
    written = console.getvalue()
    assert f"ASANA-{gid} done" in written
    assert not any(line.startswith(FORGED) for line in written.splitlines())
    assert "\x1b" not in written and "\x07" not in written and "\r" not in written
    assert "\\x1b]0;owned\\x07" in written


def test_tracebacks_keep_their_line_breaks_but_not_escape_codes(console):
    try:
        raise ValueError(HOSTILE_NAME)
    except ValueError:
        logging.getLogger("integrations.pipeline.runs").exception("failed: %s", "x\ny")
    written = console.getvalue()
    assert "failed: x\\ny" in written
    assert "Traceback (most recent call last):\n" in written
    assert "\x1b" not in written


def test_command_output_escapes_control_characters_from_asana(connection):
    connection.workspace_name = "Acme\x1b[2J\x1b]0;owned\x07"
    connection.save()
    out = io.StringIO()
    call_command("asana", "status", stdout=out)
    assert "Acme\\x1b[2J\\x1b]0;owned\\x07" in out.getvalue()
    assert "\x1b" not in out.getvalue()


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain Ünïcode 名前", "plain Ünïcode 名前"),
        ("a\nb", "a\\nb"),
        ("a\u2028b", "a\\u2028b"),
        ("\x9b31m", "\\x9b31m"),
    ],
)
def test_printable_escapes_control_characters_only(text, shown):
    assert printable(text) == shown
