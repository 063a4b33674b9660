"""The one seam for outbound HTTP: a small Asana REST client on httpx.

- Bearer token auth; bodies wrapped in `{"data": ...}`, responses unwrapped.
- Cursor pagination (`limit`, `next_page.offset`) for every list.
- 429 honours `Retry-After`; 5xx and transport errors are retried with capped exponential
  backoff and jitter; other 4xx are never retried.
- Per token: a requests-per-minute budget shared by every process using the token (see
  budget.py; a 429's `Retry-After` pauses them all), and at most 50 reads / 15 writes in
  flight in each process, as Asana's limits require.
- Answers are not trusted: a body that is not a JSON object with `data` of the expected shape
  raises AsanaMalformedResponse; pagination stops on a repeated `next_page.offset` or after
  ASANA_MAX_PAGES pages with AsanaPaginationError.
- Errors are typed (`integrations.asana.errors`) and never contain the token.
- With an `answers_key` (every client of a stored connection: `client_for`), each answer is
  counted in the shared store for the safety rails: an error is a 5xx or a request that got
  no answer (timeout, connection refused or dropped); a 429 and other 4xx are answers.

A POST answered 5xx, or whose answer was lost, may have been applied by Asana (or by a
gateway in front of it), so a non-idempotent write (creating a comment, an attachment, a tag
or a webhook) is never resent here: it raises `AsanaOutcomeUnknown`, and
`integrations.asana.creates.create_once` looks whether it landed before sending it again.
Requests that never left (connect errors) and 429s (refused, not applied) are retried.
"""

import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from typing import Any

import certifi
import httpx
from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from integrations.asana import budget
from integrations.asana.errors import (
    AsanaError,
    AsanaMalformedResponse,
    AsanaOutcomeUnknown,
    AsanaPaginationError,
    AsanaRateLimited,
    AsanaUnavailable,
    error_for_status,
)
from integrations.asana.tokens import InvalidToken, clean_token
from pilotsite.redact import redact, register_secret

log = logging.getLogger(__name__)

PAGE_SIZE = 100
MAX_READS_IN_FLIGHT = 50
MAX_WRITES_IN_FLIGHT = 15
BACKOFF_CAP = 30.0
RETRY_AFTER_CAP = 120.0
USER_AGENT = "pilotsite/0.1 (+https://github.com/pilotsite)"


class _InFlight:
    """At most 50 reads and 15 writes in flight for one token, in this process."""

    def __init__(self) -> None:
        self.reads = threading.BoundedSemaphore(MAX_READS_IN_FLIGHT)
        self.writes = threading.BoundedSemaphore(MAX_WRITES_IN_FLIGHT)


_in_flight: dict[str, _InFlight] = {}
_in_flight_lock = threading.Lock()


def _in_flight_for(key: str) -> _InFlight:
    with _in_flight_lock:
        if key not in _in_flight:
            _in_flight[key] = _InFlight()
        return _in_flight[key]


@lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    # Building a context loads the CA bundle (tens of milliseconds); clients are created
    # per job, so they share one.
    return ssl.create_default_context(cafile=certifi.where())


def _default_transport() -> httpx.HTTPTransport:
    # Without TCP_NODELAY small requests wait on Nagle's algorithm and delayed ACKs:
    # about 11 ms each, measured against the fake on loopback.
    return httpx.HTTPTransport(
        verify=_ssl_context(),
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
    )


def _retry_after(response: httpx.Response) -> float | None:
    try:
        seconds = float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None
    # A negative or absurd value from a proxy must neither crash `sleep` nor park a worker.
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


def _envelope_messages(response: httpx.Response) -> list[str]:
    try:
        errors = response.json().get("errors") or []
        return [str(e.get("message", "")) for e in errors if isinstance(e, dict)]
    except (ValueError, AttributeError):
        return [response.text[:200]] if response.text else []


class AsanaClient:
    @sensitive_variables("token")
    def __init__(
        self,
        token: str,
        *,
        base_url: str | None = None,
        transport: httpx.BaseTransport | None = None,
        requests_per_minute: int | None = None,
        max_retries: int | None = None,
        timeout: float | None = None,
        backoff_base: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        max_budget_wait: float | None = None,
        answers_key: str | None = None,
    ) -> None:
        """`timeout` is seconds per request; `max_budget_wait` (seconds, None = no limit) is how
        long a request may wait for the shared budget before AsanaRateLimited is raised (a
        person waiting on a page should not wait a minute); `answers_key` is where each
        answer is counted (`budget.answers_key`), None for none. Raises AsanaError for a
        missing token or one with characters a token cannot have (tokens.clean_token)."""
        if not token:
            raise AsanaError("no Asana access token is configured: connect the workspace first")
        try:
            token = clean_token(token)
        except InvalidToken as exc:
            raise AsanaError(f"The stored Asana token is unusable: {exc}") from None
        register_secret(token)
        self._token = token
        self._budget_key = budget.token_key(token)
        self._per_minute = requests_per_minute or settings.ASANA_REQUESTS_PER_MINUTE
        self._in_flight = _in_flight_for(self._budget_key)
        self._max_budget_wait = max_budget_wait
        self._max_retries = settings.ASANA_MAX_RETRIES if max_retries is None else max_retries
        self._backoff_base = backoff_base
        self._sleep = sleep
        self._answers_key = answers_key
        self.request_count = 0
        self._http = httpx.Client(
            base_url=(base_url or settings.ASANA_API_BASE_URL).rstrip("/"),
            transport=transport or _default_transport(),
            timeout=timeout or settings.ASANA_TIMEOUT,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "AsanaClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -----------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        form: dict[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> dict[str, Any]:
        """Send one API call (with retries) and return the whole decoded JSON body."""
        is_write = method != "GET"
        if idempotent is None:
            idempotent = method in ("GET", "PUT", "DELETE")
        kwargs: dict[str, Any] = {"params": params}
        if data is not None:
            kwargs["json"] = {"data": data}
        if form is not None:
            # (None, value) makes httpx send a multipart form field without a file.
            kwargs["files"] = {k: (None, v) for k, v in form.items()}
        gate = self._in_flight.writes if is_write else self._in_flight.reads
        attempt = 0
        slept_pause = False  # this client waited out the 429 itself: no second wait for it
        while True:
            attempt += 1
            self._wait_for_budget(method, path, honour_pause=not slept_pause)
            slept_pause = False
            started = time.monotonic()
            try:
                with gate:
                    self.request_count += 1
                    response = self._http.request(method, path, **kwargs)
            except httpx.RequestError as exc:
                self._note_answer(error=True)
                # Transport failures, but also undecodable bodies and redirect loops: each
                # becomes a typed error, so no raw httpx exception reaches a caller.
                never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if attempt <= self._max_retries and (idempotent or never_sent):
                    self._backoff(attempt, None, method, path, type(exc).__name__)
                    continue
                unknown = not (idempotent or never_sent)
                cls = AsanaOutcomeUnknown if unknown else AsanaUnavailable
                unavailable = cls(
                    f"Asana could not be reached ({type(exc).__name__}): {cls.advice}",
                    method=method,
                    path=path,
                    detail=redact(str(exc), self._token),
                )
                timed_out = isinstance(exc, httpx.TimeoutException)
                unavailable.cause = "timeout" if timed_out else "connect"
                raise unavailable from None
            log.debug(
                "asana %s %s -> %s in %.0f ms",
                method,
                path,
                response.status_code,
                (time.monotonic() - started) * 1000,
            )
            status = response.status_code
            self._note_answer(error=status >= 500)
            if status < 400:
                if status == 204 or not response.content:
                    return {}
                try:
                    body = response.json()
                except ValueError:
                    body = _NOT_JSON
                if not isinstance(body, dict):
                    shown = "a body that is not JSON" if body is _NOT_JSON else type(body).__name__
                    raise AsanaMalformedResponse(
                        f"Asana answered {status} with {shown} instead of a JSON object: "
                        f"{AsanaMalformedResponse.advice}",
                        status=status,
                        method=method,
                        path=path,
                    )
                return body
            if status >= 500 and not idempotent:
                raise AsanaOutcomeUnknown(
                    f"Asana answered {status} to a create: {AsanaOutcomeUnknown.advice}",
                    status=status,
                    method=method,
                    path=path,
                    detail="; ".join(_envelope_messages(response)),
                )
            wait = _retry_after(response) if status == 429 else None
            if wait:
                # Every process using this token holds off, not only this one.
                budget.store().pause(self._budget_key, time.time() + wait)
            if (status == 429 or status >= 500) and attempt <= self._max_retries:
                self._backoff(attempt, wait, method, path, str(status))
                slept_pause = bool(wait)
                continue
            raise error_for_status(status, _envelope_messages(response), method=method, path=path)

    def _note_answer(self, *, error: bool) -> None:
        if self._answers_key is None:
            return
        try:
            budget.store().note_answer(self._answers_key, error)
        except Exception as exc:  # a lost count only weakens the rails: the request stands
            log.warning("could not count an Asana answer: %s", type(exc).__name__)

    def _wait_for_budget(self, method: str, path: str, *, honour_pause: bool = True) -> None:
        # A 429's pause is slept once: afterwards this client's own view of time decides
        # (a recorded pause is never re-read in a loop, so an injected clock cannot spin).
        while True:
            try:
                wait, paused = budget.store().acquire(
                    self._budget_key, self._per_minute, honour_pause=honour_pause
                )
            except Exception as exc:  # the store is Redis or a database: any driver error
                raise AsanaUnavailable(
                    "the shared Asana request budget could not be reached "
                    f"({type(exc).__name__}); check REDIS_URL or the database, then try again",
                    method=method,
                    path=path,
                    detail=redact(str(exc), self._token),
                ) from None
            if not wait:
                return
            if self._max_budget_wait is not None and wait > self._max_budget_wait:
                raise AsanaRateLimited(
                    f"the request budget for this token is spent for the next {wait:.0f} s "
                    f"(ASANA_REQUESTS_PER_MINUTE={self._per_minute}): {AsanaRateLimited.advice}",
                    method=method,
                    path=path,
                )
            honour_pause = honour_pause and not paused
            log.info("asana %s %s: request budget spent, waiting %.2f s", method, path, wait)
            self._sleep(wait)

    def _backoff(
        self, attempt: int, retry_after: float | None, method: str, path: str, reason: str
    ) -> None:
        if retry_after is None:
            ceiling = min(BACKOFF_CAP, self._backoff_base * 2 ** (attempt - 1))
            retry_after = ceiling / 2 + random.uniform(0, ceiling / 2)
        log.info("asana %s %s: %s, retrying in %.2f s", method, path, reason, retry_after)
        self._sleep(retry_after)

    def get(self, path: str, *, opt_fields: Iterable[str] = (), **params: Any) -> dict[str, Any]:
        """One object (`data` of the answer); AsanaMalformedResponse when it is not an object."""
        if opt_fields:
            params["opt_fields"] = ",".join(opt_fields)
        return _data(self.request("GET", path, params=params), dict, "GET", path)

    def paginate(
        self,
        path: str,
        *,
        opt_fields: Iterable[str] = (),
        page_size: int = PAGE_SIZE,
        **params: Any,
    ) -> Iterator[dict[str, Any]]:
        """Yield every item (a dict) of a list endpoint, following `next_page.offset`.

        Raises AsanaPaginationError when Asana hands back an offset it already gave (a loop)
        or more than ASANA_MAX_PAGES pages, and AsanaMalformedResponse when a page's `data`
        is not a list of objects. Items of earlier pages have been yielded by then.
        """
        params["limit"] = min(page_size, PAGE_SIZE)
        if opt_fields:
            params["opt_fields"] = ",".join(opt_fields)
        seen: set[str] = set()
        pages = 0
        while True:
            body = self.request("GET", path, params=params)
            pages += 1
            items = _data(body, list, "GET", path)
            if not all(isinstance(item, dict) for item in items):
                raise _malformed("a list with items that are not objects", "GET", path)
            yield from items
            next_page = body.get("next_page") or {}
            offset = next_page.get("offset") if isinstance(next_page, dict) else None
            if not offset:
                return
            offset = str(offset)
            if offset in seen:
                raise AsanaPaginationError(
                    f"Asana repeated a page cursor while listing {path}; stopped after {pages} "
                    f"pages: {AsanaPaginationError.advice}",
                    method="GET",
                    path=path,
                )
            if pages >= settings.ASANA_MAX_PAGES:
                raise AsanaPaginationError(
                    f"listing {path} went past ASANA_MAX_PAGES ({settings.ASANA_MAX_PAGES} "
                    f"pages of {params['limit']}); stopped: {AsanaPaginationError.advice}",
                    method="GET",
                    path=path,
                )
            seen.add(offset)
            params["offset"] = offset

    # -- resources -----------------------------------------------------------------

    @property
    def token_key(self) -> str:
        """A stable name for this client's token that reveals nothing of it (a hash)."""
        return self._budget_key

    def me(self) -> dict[str, Any]:
        return self.get("/users/me", opt_fields=("name", "workspaces", "workspaces.name"))

    def workspaces(self) -> Iterator[dict[str, Any]]:
        """The workspaces the token's user belongs to (`gid`, `name`); GET /workspaces."""
        return self.paginate("/workspaces", opt_fields=("name",))

    def workspace(self, workspace_gid: str) -> dict[str, Any]:
        return self.get(f"/workspaces/{workspace_gid}", opt_fields=("name",))

    def workspace_users(self, workspace_gid: str) -> Iterator[dict[str, Any]]:
        return self.paginate("/users", workspace=workspace_gid, opt_fields=("name", "email"))

    def workspace_tags(self, workspace_gid: str) -> Iterator[dict[str, Any]]:
        return self.paginate(f"/workspaces/{workspace_gid}/tags", opt_fields=("name", "created_at"))

    def create_tag(self, workspace_gid: str, name: str) -> dict[str, Any]:
        body = self.request("POST", f"/workspaces/{workspace_gid}/tags", data={"name": name})
        return _data(body, dict, "POST", "/workspaces/{gid}/tags")

    def tag_tasks(
        self, tag_gid: str, opt_fields: Iterable[str], page_size: int = PAGE_SIZE
    ) -> Iterator[dict[str, Any]]:
        return self.paginate(f"/tags/{tag_gid}/tasks", opt_fields=opt_fields, page_size=page_size)

    # searchTasksForWorkspace's description: "Page sizes are limited to a maximum of 100 items,
    # and can be specified by the `limit` query parameter".
    SEARCH_LIMIT = 100

    def search_tasks(
        self, workspace_gid: str, opt_fields: Iterable[str], **filters: str
    ) -> list[dict[str, Any]]:
        """One page (up to SEARCH_LIMIT tasks) of GET /workspaces/{workspace_gid}/tasks/search.

        `filters` are the spec's query parameters by name (`**{"tags.any": "1,2"}`). Search
        has no page cursor; AsanaPaymentRequired (402) on plans without search."""
        path = f"/workspaces/{workspace_gid}/tasks/search"
        params: dict[str, Any] = {**filters, "limit": self.SEARCH_LIMIT}
        params["opt_fields"] = ",".join(opt_fields)
        items = _data(self.request("GET", path, params=params), list, "GET", path)
        if not all(isinstance(item, dict) for item in items):
            raise _malformed("a list with items that are not objects", "GET", path)
        return items

    def task(self, task_gid: str, opt_fields: Iterable[str]) -> dict[str, Any]:
        return self.get(f"/tasks/{task_gid}", opt_fields=opt_fields)

    def update_task(self, task_gid: str, **fields: Any) -> dict[str, Any]:
        return _data(self.request("PUT", f"/tasks/{task_gid}", data=fields), dict, "PUT", "/tasks")

    def add_tag(self, task_gid: str, tag_gid: str) -> None:
        # Adding a tag twice leaves one tag, so resending after a lost response is safe.
        self.request("POST", f"/tasks/{task_gid}/addTag", data={"tag": tag_gid}, idempotent=True)

    def remove_tag(self, task_gid: str, tag_gid: str) -> None:
        self.request("POST", f"/tasks/{task_gid}/removeTag", data={"tag": tag_gid}, idempotent=True)

    STORY_FIELDS = ("resource_subtype", "text", "html_text", "created_at", "created_by.name")

    def stories(
        self, task_gid: str, opt_fields: Iterable[str] = STORY_FIELDS
    ) -> Iterator[dict[str, Any]]:
        """A task's stories, oldest first (`GET /tasks/{task_gid}/stories`, paged: the spec
        offers no other order)."""
        return self.paginate(f"/tasks/{task_gid}/stories", opt_fields=opt_fields)

    def add_comment(
        self, task_gid: str, *, text: str | None = None, html_text: str | None = None
    ) -> dict[str, Any]:
        data = {"html_text": html_text} if html_text is not None else {"text": text or ""}
        body = self.request("POST", f"/tasks/{task_gid}/stories", data=data)
        return _data(body, dict, "POST", "/tasks/{gid}/stories")

    def update_comment(self, story_gid: str, *, text: str) -> dict[str, Any]:
        """Edit a comment's text in place (`PUT /stories/{story_gid}`, spec "Update a
        story": only comment stories can have their text updated)."""
        body = self.request("PUT", f"/stories/{story_gid}", data={"text": text})
        return _data(body, dict, "PUT", "/stories/{gid}")

    def attachments(
        self, task_gid: str, opt_fields: Iterable[str] = ("view_url",)
    ) -> Iterator[dict[str, Any]]:
        """A task's attachments (`GET /attachments?parent=`, getAttachmentsForObject)."""
        return self.paginate("/attachments", parent=task_gid, opt_fields=opt_fields)

    def subtasks(self, task_gid: str, opt_fields: Iterable[str]) -> Iterator[dict[str, Any]]:
        """A task's subtasks (`GET /tasks/{task_gid}/subtasks`, getSubtasksForTask)."""
        return self.paginate(f"/tasks/{task_gid}/subtasks", opt_fields=opt_fields)

    def add_external_attachment(self, task_gid: str, url: str, name: str) -> dict[str, Any]:
        form = {"parent": task_gid, "resource_subtype": "external", "url": url, "name": name}
        return _data(self.request("POST", "/attachments", form=form), dict, "POST", "/attachments")

    def status_updates(self, parent_gid: str) -> Iterator[dict[str, Any]]:
        """`GET /status_updates?parent=`: the status updates on a goal (or project)."""
        return self.paginate(
            "/status_updates", parent=parent_gid, opt_fields=("status_type", "text", "created_at")
        )

    def create_status_update(self, parent_gid: str, status_type: str, text: str) -> dict[str, Any]:
        """`POST /status_updates` (createStatusForObject): a status update on `parent_gid`.
        A create: call it through `integrations.asana.creates.create_once`."""
        data = {"parent": parent_gid, "status_type": status_type, "text": text}
        body = self.request("POST", "/status_updates", data=data)
        return _data(body, dict, "POST", "/status_updates")

    def goals(self, workspace_gid: str, opt_fields: Iterable[str]) -> Iterator[dict[str, Any]]:
        return self.paginate("/goals", workspace=workspace_gid, opt_fields=opt_fields)

    def goal(self, goal_gid: str, opt_fields: Iterable[str]) -> dict[str, Any]:
        return self.get(f"/goals/{goal_gid}", opt_fields=opt_fields)

    def subgoal_relationships(
        self, goal_gid: str, opt_fields: Iterable[str]
    ) -> Iterator[dict[str, Any]]:
        return self.paginate(
            "/goal_relationships",
            supported_goal=goal_gid,
            resource_subtype="subgoal",
            opt_fields=opt_fields,
        )

    def create_webhook(self, resource_gid: str, target: str) -> dict[str, Any]:
        body = self.request("POST", "/webhooks", data={"resource": resource_gid, "target": target})
        return _data(body, dict, "POST", "/webhooks")

    def webhooks(self, workspace_gid: str) -> Iterator[dict[str, Any]]:
        return self.paginate(
            "/webhooks",
            workspace=workspace_gid,
            opt_fields=("active", "resource", "target", "last_failure_at", "last_failure_content"),
        )

    def delete_webhook(self, webhook_gid: str) -> None:
        self.request("DELETE", f"/webhooks/{webhook_gid}")


_NOT_JSON = object()


def _malformed(what: str, method: str, path: str) -> AsanaMalformedResponse:
    return AsanaMalformedResponse(
        f"Asana answered with {what}: {AsanaMalformedResponse.advice}", method=method, path=path
    )


def _data(body: dict[str, Any], kind: type, method: str, path: str) -> Any:
    """The envelope's `data`, which must be a `kind` (dict for one object, list for a page)."""
    if "data" not in body:
        raise _malformed("an object without `data`", method, path)
    if not isinstance(body["data"], kind):
        raise _malformed(
            f"`data` that is not a{'n object' if kind is dict else ' list'}", method, path
        )
    return body["data"]


def client_for(connection: Any, **kwargs: Any) -> AsanaClient:
    """A client for a connection (anything with an `access_token`); a stored one (with a
    `pk`) has its answers counted for the safety rails."""
    pk = getattr(connection, "pk", None)
    if pk is not None:
        kwargs.setdefault("answers_key", budget.answers_key(pk))
    return AsanaClient(connection.access_token, **kwargs)
