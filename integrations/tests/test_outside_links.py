"""Links from outside (a task's permalink from Asana, a result link from an executor) are
links only when they are http(s); anything else is shown as text, in the admin list, on the
card and in the comment posted to Asana."""

import pytest
from django.urls import reverse

from integrations.models import ProcessedTask
from integrations.pipeline.report import success_html
from integrations.tests.pipeline_fixtures import process, tagged
from pilotsite.untrusted import external_link, web_url

TAB = reverse("admin:index") + "?tab=integrations"
HOSTILE = [
    "javascript:alert(document.cookie)",
    "JavaScript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "//evil.example/x",
    "/admin/auth/user/",
    "http://",
    "https://exa mple.com/",
    "https://example.com/\nx",
]


@pytest.mark.parametrize("url", HOSTILE)
def test_only_http_urls_with_a_host_count_as_web_urls(url):
    assert web_url(url) == ""
    assert "<a" not in external_link(url, "click me")


@pytest.mark.parametrize("url", ["https://github.com/acme/app/pull/42", "HTTP://example.com/"])
def test_http_urls_are_links(url):
    assert web_url(url) == url
    assert external_link(url, "PR") == (
        f'<a href="{url}" rel="noopener noreferrer" target="_blank">PR</a>'
    )


@pytest.fixture
def hostile_row(connection) -> ProcessedTask:
    return ProcessedTask.objects.create(
        connection=connection,
        task_gid="4242",
        task_name="hostile",
        state=ProcessedTask.State.DONE,
        permalink_url="javascript:alert('permalink')",
        result_url="javascript:alert('result')",
        result_url_title="Open me",
    )


def test_processed_task_list_shows_a_non_http_result_link_as_text(admin_client, hostile_row):
    page = admin_client.get(reverse("admin:integrations_processedtask_changelist")).content
    page = page.decode()
    assert "javascript:" not in page
    assert "Open me" in page


def test_card_shows_non_http_links_from_outside_as_text(admin_client, hostile_row):
    page = admin_client.get(TAB).content.decode()
    assert "javascript:" not in page
    assert "Open me" in page
    # The task itself is still reachable, at its standard Asana address.
    assert 'href="https://app.asana.com/0/0/4242"' in page


def test_comment_posted_to_asana_links_only_http_urls():
    assert success_html("Built it", "javascript:alert(1)", "Open me") == (
        "<body>Successfully completed — Open me\nBuilt it</body>"
    )
    assert '<a href="https://example.com/pr">PR</a>' in success_html(
        "", "https://example.com/pr", "PR"
    )


def test_executor_result_link_that_is_not_http_is_dropped(connection, pilot, settings):
    settings.PILOT_EXECUTOR = ""
    settings.PILOT_EXECUTOR_COMMAND = (
        'echo \'{"summary": "done", "url": "javascript:alert(1)", "url_title": "x"}\''
    )
    done = process(connection, tagged(pilot, "hostile link"))
    assert (done.state, done.result_url, done.result_url_title) == ("done", "", "")
    assert pilot.attachments(done.task_gid) == []
