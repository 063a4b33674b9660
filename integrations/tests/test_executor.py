"""The command and Python-callable executors, with real subprocesses."""

import json
import sys
import time
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.core.management import call_command

from integrations.models import ProcessedTask
from integrations.pipeline import jobs
from integrations.pipeline.dispatch import dispatch_task
from integrations.pipeline.execute import ERROR_LIMIT, OUTPUT_LIMIT, run_callable, run_command
from integrations.pipeline.executors import execute, executor_configured, executor_description
from integrations.pipeline.launch import WITHHELD_ENV
from integrations.pipeline.report import FAILED_PREFIX, FAILURE_DETAIL_LIMIT
from integrations.tests.pipeline_fixtures import comment_texts, process, tagged

TASK = {
    "id": "ASANA-42",
    "gid": "42",
    "title": "Fix the login page",
    "description": "It breaks on Safari",
    "labels": ["bug"],
    "project": "Web",
    "url": "https://app.asana.com/0/0/42",
    "created_at": "2026-01-01T00:00:00.000Z",
    "priority": "high",
}
PY = sys.executable


def script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "executor.py"
    path.write_text(body)
    return f"{PY} {path}"


def alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting for init to reap it."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return False
        if "\nState:\tZ" in status:
            return False
        time.sleep(0.1)
    return True


def echo_executor(task: dict) -> dict:
    return {
        "summary": f"handled {task['id']}",
        "url": "https://example.com/pr/1",
        "url_title": "PR #1",
    }


def failing_executor(task: dict) -> dict:
    raise RuntimeError("the model is unavailable")


def test_last_json_line_is_the_result(tmp_path):
    cmd = script(
        tmp_path,
        "import json\nprint('working...')\n"
        "print(json.dumps({'summary': 'Opened a pull request', "
        "'url': 'https://github.com/acme/app/pull/42', 'url_title': 'PR #42'}))\n\n",
    )
    result = run_command(cmd, TASK, timeout=30)
    assert result.ok
    assert result.summary == "Opened a pull request"
    assert result.url == "https://github.com/acme/app/pull/42"
    assert result.url_title == "PR #42"
    assert "working..." in result.output


def test_task_arrives_as_json_on_stdin_and_as_environment(tmp_path):
    seen = tmp_path / "seen.json"
    cmd = script(
        tmp_path,
        "import json, os, sys\n"
        f"out = {{'stdin': json.load(sys.stdin), 'env': {{k: v for k, v in os.environ.items() "
        f"if k.startswith('PILOT_TASK_')}}}}\n"
        f"open({str(seen)!r}, 'w').write(json.dumps(out))\n",
    )
    assert run_command(cmd, TASK, timeout=30).ok
    seen_data = json.loads(seen.read_text())
    assert seen_data["stdin"] == TASK
    assert seen_data["env"] == {
        "PILOT_TASK_ID": "ASANA-42",
        "PILOT_TASK_GID": "42",
        "PILOT_TASK_TITLE": "Fix the login page",
        "PILOT_TASK_URL": "https://app.asana.com/0/0/42",
        "PILOT_TASK_PRIORITY": "high",
    }


@pytest.mark.parametrize("name", WITHHELD_ENV)
def test_pilotsite_secrets_are_not_passed_to_the_command(tmp_path, monkeypatch, name):
    monkeypatch.setenv(name, "very-secret-value")
    cmd = script(tmp_path, f"import os\nprint(os.environ.get({name!r}, 'absent'))\n")
    result = run_command(cmd, TASK, timeout=30)
    assert result.ok and "absent" in result.output


def test_the_environment_is_an_allow_list_not_a_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("PILOT_HARMLESS", "not asked for")
    monkeypatch.setenv("LANG", "C.UTF-8")
    cmd = script(tmp_path, "import os, json\nprint(json.dumps(sorted(os.environ)))\n")
    names = json.loads(run_command(cmd, TASK, timeout=30).output.splitlines()[1])
    assert "PILOT_HARMLESS" not in names and "LANG" in names
    assert set(names) <= {
        *("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "HOME", "USER", "LOGNAME", "PWD"),
        *("TMPDIR", "PILOT_TASK_ID", "PILOT_TASK_GID", "PILOT_TASK_TITLE", "PILOT_TASK_URL"),
        *("PILOT_TASK_PRIORITY", "LC_CTYPE"),
    }


def test_names_listed_in_pilot_executor_env_are_passed_but_never_pilotsites_secrets(
    tmp_path, monkeypatch, settings
):
    # `asana connect` reads the token from the environment, so it is often kept in .env.
    monkeypatch.setenv("ASANA_ACCESS_TOKEN", "2/1234/5678:abcdef")
    monkeypatch.setenv("AGENT_API_KEY", "the agent's own key")
    settings.PILOT_EXECUTOR_ENV = ["AGENT_API_KEY", "ASANA_ACCESS_TOKEN"]
    cmd = script(
        tmp_path,
        "import os\nprint(os.environ.get('ASANA_ACCESS_TOKEN', 'absent'), "
        "os.environ.get('AGENT_API_KEY') == \"the agent's own key\")\n",
    )
    assert "absent True" in run_command(cmd, TASK, timeout=30).output


def test_output_that_is_not_json_is_success_without_summary(tmp_path):
    result = run_command(script(tmp_path, "print('all good')\n"), TASK, timeout=30)
    assert result.ok
    assert result.summary == "" and result.url == ""


def test_non_zero_exit_fails_with_the_end_of_stderr(tmp_path):
    cmd = script(
        tmp_path,
        "import sys\nsys.stderr.write('x' * 5000 + 'Traceback: boom at the end\\n')\nsys.exit(3)\n",
    )
    result = run_command(cmd, TASK, timeout=30)
    assert not result.ok
    assert "status 3" in result.error
    assert result.error.endswith("Traceback: boom at the end")
    assert len(result.error) < 1600


def test_timeout_kills_the_whole_process_group(tmp_path):
    child_pid, stubborn_pid = tmp_path / "child.pid", tmp_path / "stubborn.pid"
    # One child holds the output pipes; the other ignores SIGTERM and holds nothing, so
    # only a kill of the whole group stops it.
    stubborn = f"trap '' TERM; echo $$ > {stubborn_pid}; exec sleep 60"
    cmd = script(
        tmp_path,
        "import subprocess, sys, time\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        f"open({str(child_pid)!r}, 'w').write(str(child.pid))\n"
        f"subprocess.Popen(['sh', '-c', {stubborn!r}], stdout=subprocess.DEVNULL, "
        "stderr=subprocess.DEVNULL)\n"
        "sys.stderr.write('still thinking\\n'); sys.stderr.flush()\n"
        "time.sleep(60)\n",
    )
    started = time.monotonic()
    result = run_command(cmd, TASK, timeout=1)
    assert time.monotonic() - started < 15
    assert not result.ok
    assert result.error.startswith("timed out after 1 s")
    assert "still thinking" in result.error
    assert not alive(int(child_pid.read_text()))
    assert not alive(int(stubborn_pid.read_text()))


def test_output_kept_is_bounded(tmp_path):
    cmd = script(
        tmp_path,
        "import sys\nfor _ in range(20000): print('y' * 100)\nprint('{\"summary\": \"big\"}')\n",
    )
    result = run_command(cmd, TASK, timeout=60)
    assert result.ok and result.summary == "big"
    assert len(result.output) <= OUTPUT_LIMIT + 100
    assert result.output.startswith("[earlier output was dropped]\n")


def test_secrets_in_errors_are_redacted(tmp_path):
    token = "2/1234567890/1234567890:0123456789abcdef0123456789abcdef"
    cmd = script(
        tmp_path, f"import sys\nsys.stderr.write('auth failed for {token}')\nsys.exit(1)\n"
    )
    result = run_command(cmd, TASK, timeout=30)
    assert token not in result.error and token not in result.output
    assert "[redacted]" in result.error


def test_result_link_must_be_http(tmp_path):
    cmd = script(
        tmp_path, 'print(\'{"summary": "s", "url": "javascript:alert(1)", "url_title": "x"}\')\n'
    )
    result = run_command(cmd, TASK, timeout=30)
    assert result.ok and result.url == "" and result.url_title == ""


def test_python_callable_executor_returns_the_result():
    result = run_callable("integrations.tests.test_executor:echo_executor", TASK)
    assert result.ok
    assert (result.summary, result.url, result.url_title) == (
        "handled ASANA-42",
        "https://example.com/pr/1",
        "PR #1",
    )


def test_python_callable_that_raises_is_a_failure():
    result = run_callable("integrations.tests.test_executor:failing_executor", TASK)
    assert not result.ok
    assert result.error == "RuntimeError: the model is unavailable"
    assert "Traceback" in result.output


def test_callable_wins_over_command_when_both_are_set(settings):
    settings.PILOT_EXECUTOR = "integrations.tests.test_executor:echo_executor"
    settings.PILOT_EXECUTOR_COMMAND = "exit 1"
    assert execute(TASK).ok


def test_no_executor_configured_is_described(settings):
    settings.PILOT_EXECUTOR = ""
    settings.PILOT_EXECUTOR_COMMAND = ""
    assert not executor_configured()
    assert "no executor configured" in executor_description()


def test_command_executor_is_described_with_its_timeout(settings):
    settings.PILOT_EXECUTOR = ""
    settings.PILOT_EXECUTOR_COMMAND = "/opt/agent/run"
    settings.PILOT_EXECUTOR_TIMEOUT = 600
    assert executor_configured()
    assert executor_description() == "command '/opt/agent/run' (timeout 600 s)"


# -- an unresolvable PILOT_EXECUTOR ----------------------------------------------------------

NOT_CALLABLE = "not a function"
UNRESOLVABLE = [
    (
        "nope.mod:fn",
        "PILOT_EXECUTOR 'nope.mod:fn' cannot be imported: No module named 'nope'; fix the setting",
    ),
    (
        "integrations.tests.test_executor:missing",
        "PILOT_EXECUTOR 'integrations.tests.test_executor:missing' cannot be found: module "
        "'integrations.tests.test_executor' has no attribute 'missing'; fix the setting",
    ),
    (
        "integrations.tests.test_executor:NOT_CALLABLE",
        "PILOT_EXECUTOR 'integrations.tests.test_executor:NOT_CALLABLE' is not callable; "
        "fix the setting",
    ),
]


@pytest.mark.parametrize(
    ("dotted", "problem"), UNRESOLVABLE, ids=["no module", "no attribute", "not callable"]
)
def test_unresolvable_callable_is_not_configured_and_says_why(settings, dotted, problem):
    settings.PILOT_EXECUTOR = dotted
    # It wins over the command: a typo must not quietly run something else.
    settings.PILOT_EXECUTOR_COMMAND = "/opt/agent/run"
    assert not executor_configured()
    assert executor_description() == f"{problem}; until then no task is claimed"
    result = execute(TASK)
    assert not result.ok and result.error == problem


def test_resolution_follows_the_setting_value(settings):
    settings.PILOT_EXECUTOR = "nope.mod:fn"
    assert not executor_configured()
    settings.PILOT_EXECUTOR = "integrations.tests.test_executor:echo_executor"
    assert executor_configured()
    assert executor_description() == (
        "Python callable integrations.tests.test_executor:echo_executor"
    )


# runpollers closes the connection it is given, as the runpollers tests do.
@pytest.mark.django_db(transaction=True)
def test_nothing_is_claimed_with_an_unresolvable_executor(connection, pilot, settings):
    settings.PILOT_EXECUTOR = "nope.mod:fn"
    gid = tagged(pilot, "nobody can run it")
    assert jobs.poll_all()["skipped"] == "no executor configured"
    call_command("runpollers", "--once")
    assert dispatch_task(connection, gid, source="webhook", runner=lambda p: None) is None
    assert not ProcessedTask.objects.exists()
    assert comment_texts(pilot, gid) == []


def test_unresolvable_executor_fails_the_system_check(settings):
    settings.PILOT_EXECUTOR = "nope.mod:fn"
    errors = [e for e in run_checks() if e.id == "pilotsite.E005"]
    assert [e.msg for e in errors] == [UNRESOLVABLE[0][1]]


def test_resolvable_executor_passes_the_system_check(settings):
    settings.PILOT_EXECUTOR = "integrations.tests.test_executor:echo_executor"
    settings.PILOT_EXECUTOR_COMMAND = ""
    assert not [e for e in run_checks() if e.id and e.id.startswith("pilotsite.E")]


def test_executor_without_a_colon_is_reported_once_as_e004(settings):
    settings.PILOT_EXECUTOR = "just_a_module"
    ids = [e.id for e in run_checks() if e.id and e.id.startswith("pilotsite.E")]
    assert ids == ["pilotsite.E004"]
    assert not executor_configured()


# -- what a person reads in Asana and in the admin ------------------------------------------


def test_failure_comment_shows_the_error_line_after_200_kb_of_noise(
    tmp_path, connection, pilot, settings
):
    settings.PILOT_EXECUTOR, settings.PILOT_EXECUTOR_COMMAND = (
        "",
        script(
            tmp_path,
            "import os, sys\n"
            "for i in range(4000): sys.stderr.write(f'progress {i:>5}/4000 ' + '.' * 30 + '\\n')\n"
            "sys.stderr.write(f\"error: simulated failure for task {os.environ['PILOT_TASK_ID']}\\n\")\n"
            "sys.exit(2)\n",
        ),
    )
    gid = tagged(pilot, "Noisy and then broken")
    processed = process(connection, gid)
    error_line = f"error: simulated failure for task ASANA-{gid}"

    comment = comment_texts(pilot, gid)[-1]
    assert comment.startswith("Failed: the command exited with status 2")
    assert "[earlier output was dropped]" in comment
    assert comment.rstrip().endswith(error_line)
    assert len(comment) <= FAILURE_DETAIL_LIMIT + len(FAILED_PREFIX)
    # The admin keeps far more of the (bounded) output than the comment shows.
    assert processed.output.rstrip().endswith(error_line)
    assert len(comment) * 10 < len(processed.output) <= OUTPUT_LIMIT


def test_secret_at_the_cut_of_the_error_output_is_not_left_half_shown(tmp_path):
    key = "SECRET_KEY=" + "k" * 40
    # The key straddles the point where the kept end of standard error begins.
    cmd = script(
        tmp_path,
        f"import sys\nsys.stderr.write({key!r} + '\\n' + 'x' * {ERROR_LIMIT - 60} + '\\n')\n"
        "sys.exit(1)\n",
    )
    result = run_command(cmd, TASK, timeout=30)
    assert "kkkkkkkkkk" not in result.error and "kkkkkkkkkk" not in result.output


def test_success_without_a_result_says_no_summary_was_given(tmp_path, connection, pilot, settings):
    settings.PILOT_EXECUTOR, settings.PILOT_EXECUTOR_COMMAND = "", script(tmp_path, "print('ok')\n")
    gid = tagged(pilot, "Quiet success")
    assert process(connection, gid).state == ProcessedTask.State.DONE
    assert comment_texts(pilot, gid)[-1] == "Successfully completed: no summary was given"


def test_success_with_only_a_link_says_no_summary_was_given(tmp_path, connection, pilot, settings):
    settings.PILOT_EXECUTOR, settings.PILOT_EXECUTOR_COMMAND = (
        "",
        script(tmp_path, 'print(\'{"url": "https://example.com/pr/7", "url_title": "PR #7"}\')\n'),
    )
    gid = tagged(pilot, "Link only")
    process(connection, gid)
    assert comment_texts(pilot, gid)[-1] == "Successfully completed — PR #7\nno summary was given"
