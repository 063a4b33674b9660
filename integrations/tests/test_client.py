"""The Asana client against the fake Asana over real HTTP on 127.0.0.1."""

import logging
import socket
import threading
import time

import pytest

from integrations.asana.budget import SqliteStore
from integrations.asana.client import BACKOFF_CAP, RETRY_AFTER_CAP, AsanaClient
from integrations.asana.errors import (
    AsanaAuthError,
    AsanaInvalidRequest,
    AsanaNotFound,
    AsanaOutcomeUnknown,
    AsanaRateLimited,
    AsanaServerError,
    AsanaUnavailable,
)


class Sleeps(list):
    """Records the client's waits instead of spending them (the clock is outside the product)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(fake_asana, sleeps):
    with AsanaClient(fake_asana.token, sleep=sleeps, timeout=5) as api:
        yield api


def test_me_lists_the_tokens_workspaces(client, fake_asana):
    me = client.me()
    assert me["gid"] == fake_asana.user_gid
    assert [w["gid"] for w in me["workspaces"]] == [fake_asana.workspace_gid]


def test_lists_are_followed_across_pages(client, fake_asana):
    for i in range(230):
        fake_asana.add_user(f"User {i}", f"user{i}@example.com", [fake_asana.workspace_gid])
    fake_asana.reset_requests()

    users = list(client.workspace_users(fake_asana.workspace_gid))

    assert len(users) == 231
    assert len({u["gid"] for u in users}) == 231
    assert len(fake_asana.requests) == 3
    assert all(query["limit"] == "100" for _, _, query in fake_asana.requests)


def test_429_waits_for_retry_after_then_succeeds(client, fake_asana, sleeps):
    fake_asana.inject("429", retry_after=7)
    assert client.me()["gid"] == fake_asana.user_gid
    assert sleeps == [7.0]
    assert client.request_count == 2


def test_a_negative_retry_after_retries_at_once_instead_of_crashing(client, fake_asana, sleeps):
    fake_asana.inject("429", retry_after=-5)
    assert client.me()["gid"] == fake_asana.user_gid
    assert sleeps == [0.0]


def test_a_huge_retry_after_is_capped(client, fake_asana, sleeps):
    fake_asana.inject("429", retry_after=86400)
    client.me()
    assert sleeps == [RETRY_AFTER_CAP]


def test_429_gives_up_after_the_retry_budget_as_rate_limited(fake_asana, sleeps):
    fake_asana.inject("429", times=10, retry_after=1)
    with (
        AsanaClient(fake_asana.token, sleep=sleeps, max_retries=2) as api,
        pytest.raises(AsanaRateLimited) as caught,
    ):
        api.me()
    assert caught.value.permanent is False
    assert sleeps == [1.0, 1.0]


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap(fake_asana, sleeps):
    fake_asana.inject("500", times=10)
    with (
        AsanaClient(fake_asana.token, sleep=sleeps, max_retries=8, backoff_base=1.0) as api,
        pytest.raises(AsanaServerError),
    ):
        api.me()
    ceilings = [min(BACKOFF_CAP, 2.0**n) for n in range(8)]
    assert all(c / 2 <= s <= c for s, c in zip(sleeps, ceilings, strict=True))


def test_500_is_retried_with_backoff_then_succeeds(client, fake_asana, sleeps):
    fake_asana.inject("500", times=2)
    assert client.me()["gid"] == fake_asana.user_gid
    assert client.request_count == 3
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0


def test_server_errors_give_up_after_the_retry_budget_as_transient(fake_asana, sleeps):
    fake_asana.inject("503", times=10)
    with (
        AsanaClient(fake_asana.token, sleep=sleeps, max_retries=2) as api,
        pytest.raises(AsanaServerError) as caught,
    ):
        api.me()
    assert caught.value.permanent is False
    assert caught.value.status == 503
    assert api.request_count == 3


def test_a_rejected_token_is_a_permanent_error_that_says_what_to_do(fake_asana, sleeps):
    token = "2/999/888:" + "f" * 32
    with AsanaClient(token, sleep=sleeps) as api, pytest.raises(AsanaAuthError) as caught:
        api.me()
    message = str(caught.value)
    assert message.startswith("the token was rejected by Asana (401)")
    assert "generate a new personal access token" in message
    assert token not in message
    assert caught.value.permanent is True
    assert api.request_count == 1
    assert sleeps == []


def test_not_found_is_not_retried(client, fake_asana, sleeps):
    with pytest.raises(AsanaNotFound):
        client.task("123456789", opt_fields=("name",))
    assert client.request_count == 1
    assert sleeps == []


def test_a_read_dropped_mid_flight_is_retried(client, fake_asana):
    fake_asana.inject("drop", method="GET")
    assert client.me()["gid"] == fake_asana.user_gid
    assert client.request_count == 2


def test_a_comment_whose_answer_was_lost_is_not_resent(client, fake_asana):
    task = fake_asana.add_task(fake_asana.workspace_gid, "Write docs")
    fake_asana.inject("timeout-after-apply", path=r"/stories$")
    with pytest.raises(AsanaOutcomeUnknown) as caught:
        client.add_comment(task, text="hello")
    assert caught.value.permanent is False
    assert [c["text"] for c in fake_asana.comments(task)] == ["hello"]


@pytest.mark.parametrize("status", ["500", "502", "503", "504"])
def test_a_create_answered_5xx_after_landing_is_not_resent_by_the_client(
    client, fake_asana, status
):
    task = fake_asana.add_task(fake_asana.workspace_gid, "Write docs")
    fake_asana.inject(f"{status}-after-apply", path=r"/stories$")
    with pytest.raises(AsanaOutcomeUnknown) as caught:
        client.add_comment(task, text="hello")
    assert (caught.value.status, caught.value.permanent) == (int(status), False)
    assert client.request_count == 1
    assert [c["text"] for c in fake_asana.comments(task)] == ["hello"]


@pytest.mark.parametrize("status", ["500", "502", "503", "504"])
def test_idempotent_writes_answered_5xx_are_retried(client, fake_asana, status):
    task = fake_asana.add_task(fake_asana.workspace_gid, "Write docs")
    tag = fake_asana.add_tag(fake_asana.workspace_gid, "pilot-done")
    fake_asana.inject(f"{status}-after-apply", path=r"/addTag$")
    fake_asana.inject(status, method="PUT")
    client.add_tag(task, tag)
    client.update_task(task, name="Write the docs")
    assert client.request_count == 4
    assert fake_asana.tag_names(task) == ["pilot-done"]
    assert fake_asana.task(task)["name"] == "Write the docs"


def test_tagging_is_resent_after_a_lost_answer_because_it_is_idempotent(client, fake_asana):
    task = fake_asana.add_task(fake_asana.workspace_gid, "Write docs")
    tag = fake_asana.add_tag(fake_asana.workspace_gid, "pilot-done")
    fake_asana.inject("timeout-after-apply", path=r"/addTag$")
    client.add_tag(task, tag)
    assert fake_asana.tag_names(task) == ["pilot-done"]
    assert client.request_count == 2


def test_an_unreachable_asana_is_a_transient_error_after_retries(settings, sleeps):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    token = "2/1/2:" + "a" * 32
    api = AsanaClient(
        token, base_url=f"http://127.0.0.1:{port}/api/1.0", sleep=sleeps, max_retries=2
    )
    with pytest.raises(AsanaUnavailable) as caught:
        api.me()
    assert "could not be reached" in str(caught.value)
    assert token not in str(caught.value) + caught.value.detail
    assert api.request_count == 3


def test_external_attachment_is_sent_as_multipart_form(client, fake_asana):
    task = fake_asana.add_task(fake_asana.workspace_gid, "Ship it")
    client.add_external_attachment(task, "https://github.com/acme/app/pull/42", "PR #42")
    [attachment] = fake_asana.attachments(task)
    assert attachment["name"] == "PR #42"
    assert attachment["resource_subtype"] == "external"


def test_an_invalid_request_is_refused_by_the_contract(client, fake_asana):
    with pytest.raises(AsanaInvalidRequest):
        client.get("/users/me", opt_fields=("not_a_field",))
    assert fake_asana.violations
    fake_asana.violations.clear()


def test_budget_waits_once_the_minute_is_spent(tmp_path):
    store = SqliteStore(str(tmp_path / "budget"))
    assert store.acquire("k", 2) == (0.0, False)
    assert store.acquire("k", 2) == (0.0, False)
    wait, paused = store.acquire("k", 2)
    store.close()
    assert paused is False
    assert 59.0 < wait <= 60.0


def test_writes_in_flight_are_capped_per_token(fake_asana):
    task = fake_asana.add_task(fake_asana.workspace_gid, "Busy")
    tag = fake_asana.add_tag(fake_asana.workspace_gid, "busy")
    fake_asana.latency = 0.05
    in_flight = peak = 0
    lock = threading.Lock()
    original = fake_asana.handle

    def counting_handle(*args, **kwargs):
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            return original(*args, **kwargs)
        finally:
            with lock:
                in_flight -= 1

    fake_asana.handle = counting_handle
    clients = [AsanaClient(fake_asana.token, timeout=10) for _ in range(30)]
    threads = [threading.Thread(target=c.add_tag, args=(task, tag)) for c in clients]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started < 60
    assert peak <= 15
    assert peak > 1


def test_the_token_never_reaches_the_logs_even_at_debug_level(fake_asana, sleeps, caplog):
    caplog.set_level(logging.DEBUG)
    fake_asana.inject("500")
    with AsanaClient(fake_asana.token, sleep=sleeps) as api:
        api.me()
    token = "2/999/888:" + "f" * 32
    with AsanaClient(token, sleep=sleeps) as api, pytest.raises(AsanaAuthError):
        api.me()
    assert "retrying" in caplog.text
    assert fake_asana.token not in caplog.text and token not in caplog.text
