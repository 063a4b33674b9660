"""An in-memory, stateful stand-in for Asana's REST API, for tests and local simulation.

Every request goes through `FakeAsana.handle()`: it is recorded, checked against the committed
contract (violations are kept in `violations` and answered 400), authenticated, passed through
any injected fault and routed (see routes.py). Serve it in-process with `transport()` or
over HTTP with fake_server.FakeAsanaServer. The state and its test API are in fake_state.py.
"""

import hashlib
import hmac
import json
import re
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import parse_qsl

import httpx

from integrations.asana.fake import routes
from integrations.asana.fake.render import ApiError, now_iso, runaway_next_page
from integrations.asana.fake.state import FakeAsanaState
from integrations.asana.fake.validation import API_PREFIX, request_errors

SERVER_ERRORS = ("500", "502", "503", "504")
# "<status>-after-apply": the request is applied, then answered with that status. Asana's error
# docs (https://developers.asana.com/docs/errors) list server errors without saying whether a
# write was applied, and a gateway in front of Asana can commit a write and still answer 5xx
# (502/504 as its own HTML page), so a client must not resend a create blindly.
FAULT_KINDS = (
    "429",
    *SERVER_ERRORS,
    *(f"{status}-after-apply" for status in SERVER_ERRORS),
    "slow",
    "drop",
    "timeout-after-apply",
    # A hostile or broken server in Asana's place (a proxy, a wrong ASANA_API_BASE_URL): a 200
    # whose body is not Asana's envelope. Asana always answers `{"data": ...}`
    # (https://developers.asana.com/docs/response-format).
    *("json-array", "json-null", "json-string", "no-data", "data-not-object"),
    # A list whose `next_page.offset` points back at the page just read, or never ends
    # (Asana's offsets move forward and a list ends with `next_page: null`:
    # https://developers.asana.com/docs/pagination).
    *("repeat-next-page", "endless-next-page"),
)
_AFTER_APPLY = {kind for kind in FAULT_KINDS if kind.endswith("-after-apply")}
_MALFORMED_BODIES = {
    "json-array": b"[]",
    "json-null": b"null",
    "json-string": b'"OK"',
    "no-data": b'{"ok": true}',
    "data-not-object": b'{"data": "OK"}',
}
_JSON = {"Content-Type": "application/json; charset=UTF-8"}
_SERVER_ERROR_TEXT = {
    "500": "Server Error",
    "502": "Bad Gateway",
    "503": "Service Unavailable",
    "504": "Gateway Timeout",
}


@cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


class DropConnection(Exception):
    """Raised by handle(): close the connection without answering."""

    def __init__(self, timeout: bool = False) -> None:
        super().__init__("connection dropped by fault injection")
        self.timeout = timeout


@dataclass
class Fault:
    kind: str
    times: int
    method: str | None
    path: re.Pattern[str] | None
    retry_after: int
    delay: float

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or bool(self.path.search(path))
        )


@dataclass
class Hold:
    """A request the fake keeps waiting, before applying it, until the test calls `release()`
    (`FakeAsana.hold`): a client stands still mid-conversation with Asana, for as long as the
    test needs, without a timed window. `arrived` is set once the request came."""

    method: str | None
    path: re.Pattern[str] | None
    timeout: float
    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or bool(self.path.search(path))
        )

    def release(self) -> None:
        self.released.set()


class FakeAsana(FakeAsanaState):
    def __init__(self) -> None:
        super().__init__()
        self._faults: list[Fault] = []
        self._holds: list[Hold] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        # When each request of `requests` arrived (time.monotonic()), for request-rate checks.
        self.request_times: list[float] = []
        self.violations: list[str] = []
        self.latency = 0.0
        self.goals_payment_required = False
        # Used in next_page.uri; FakeAsanaServer sets it to its own address.
        self.base_url = "https://app.asana.com/api/1.0"
        # Where handshakes and deliveries go; None means the network (httpx.WSGITransport can
        # point them at a Django app in-process).
        self.outbound_transport: httpx.BaseTransport | None = None

    # ---- webhooks -------------------------------------------------------------------------

    def _post(self, url: str, headers: Mapping[str, str], body: bytes) -> httpx.Response:
        # One TLS context for every delivery: building one loads the CA bundle (about 40 ms),
        # which would be counted in every delivery's latency a benchmark measures.
        with httpx.Client(
            transport=self.outbound_transport, timeout=10, trust_env=False, verify=_tls_context()
        ) as client:
            return client.post(url, headers=dict(headers), content=body)

    def handshake(self, target: str, secret: str) -> bool:
        """Asana's webhook handshake: the target must echo X-Hook-Secret with a 200 or 204."""
        try:
            response = self._post(target, {"X-Hook-Secret": secret}, b"")
        except httpx.HTTPError:
            return False
        return (
            response.status_code in (200, 204) and response.headers.get("X-Hook-Secret") == secret
        )

    def deliver(
        self,
        webhook_gid: str,
        events: list[dict[str, Any]],
        *,
        secret: str | None = None,
        body: bytes | None = None,
        signature: str | None = None,
    ) -> int:
        """POST events to the webhook's target, signed like Asana; returns the status code.

        `secret`, `body` and `signature` override what is signed or sent, to forge deliveries.
        """
        with self._lock:
            hook = self._objects[webhook_gid]
            target, key = hook["target"], secret or hook["_secret"]
        raw = body if body is not None else json.dumps({"events": events}).encode()
        sign = signature or hmac.new(key.encode(), raw, hashlib.sha256).hexdigest()
        headers = {"X-Hook-Signature": sign, "Content-Type": "application/json"}
        try:
            response = self._post(target, headers, raw)
        except httpx.HTTPError as exc:
            self._note_delivery(webhook_gid, f"{type(exc).__name__}: {exc}")
            raise
        ok = 200 <= response.status_code < 300
        self._note_delivery(
            webhook_gid, None if ok else f"{response.status_code} {response.text[:200]}"
        )
        return response.status_code

    def _note_delivery(self, webhook_gid: str, failure: str | None) -> None:
        with self._lock:
            hook = self._objects.get(webhook_gid)
            if hook is None:
                return
            if failure is None:
                hook["last_success_at"] = now_iso()
            else:
                hook["last_failure_at"], hook["last_failure_content"] = now_iso(), failure

    def heartbeat(self, webhook_gid: str) -> int:
        return self.deliver(webhook_gid, [])

    # ---- faults and requests ----------------------------------------------------------------

    def inject(
        self,
        kind: str,
        *,
        times: int = 1,
        method: str | None = None,
        path: str | None = None,
        retry_after: int = 1,
        delay: float = 0.0,
    ) -> None:
        """Make the next `times` matching requests fail; `path` is a regex searched in the path
        relative to the API root (e.g. r"^/tasks/\\d+$"). Faults fire in the order injected."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {FAULT_KINDS}")
        pattern = re.compile(path) if path else None
        with self._lock:
            self._faults.append(
                Fault(kind, times, method.upper() if method else None, pattern, retry_after, delay)
            )

    def misbehave(
        self, kind: str, *, path: str | None = None, method: str | None = None, delay: float = 0.0
    ) -> None:
        """Make every matching request misbehave (`kind` from FAULT_KINDS) from now on."""
        self.inject(kind, times=10**9, path=path, method=method, delay=delay)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def hold(
        self, *, method: str | None = None, path: str | None = None, timeout: float = 120
    ) -> Hold:
        """Keep the next matching request (`path` a regex as for `inject`) waiting before it
        is applied, until `release()` or `timeout` seconds; other requests go on."""
        hold = Hold(method.upper() if method else None, re.compile(path) if path else None, timeout)
        with self._lock:
            self._holds.append(hold)
        return hold

    def _wait_if_held(self, method: str, path: str) -> None:
        with self._lock:
            hold = next((h for h in self._holds if h.matches(method, path)), None)
            if hold is not None:
                self._holds.remove(hold)
        if hold is not None:
            hold.arrived.set()
            hold.released.wait(hold.timeout)

    def reset_requests(self) -> None:
        with self._lock:
            self.requests.clear()
            self.request_times.clear()

    # ---- serving ----------------------------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one request; raises DropConnection when a fault says to hang up."""
        method, path, query = method.upper(), path.removeprefix(API_PREFIX) or "/", dict(query)
        headers = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            self.requests.append((method, path, query))
            self.request_times.append(time.monotonic())
        self._wait_if_held(method, path)
        if self.latency:
            time.sleep(self.latency)
        problems = self._contract_problems(method, path, query, headers, body)
        fault = self._take_fault(method, path)
        if fault is not None:
            if fault.kind == "slow":
                time.sleep(fault.delay)
            elif fault.kind == "drop":
                raise DropConnection()
            elif fault.kind in _MALFORMED_BODIES:
                return 200, dict(_JSON), _MALFORMED_BODIES[fault.kind]
            elif fault.kind not in (*_AFTER_APPLY, "repeat-next-page", "endless-next-page"):
                # The others fire after the request was applied.
                return self._fault_response(fault.kind, fault.retry_after)
        try:
            user_gid = self._tokens.get(headers.get("authorization", "").removeprefix("Bearer "))
            if user_gid is None:
                raise ApiError(401, "Not Authorized", phrase=True)
            if problems:
                raise ApiError(400, "; ".join(problems))
            status, payload = routes.dispatch(self, method, path, query, headers, body, user_gid)
        except ApiError as error:
            return error.status, dict(_JSON), json.dumps(error.body()).encode()
        if fault is not None and fault.kind == "timeout-after-apply":
            time.sleep(fault.delay)
            raise DropConnection(timeout=True)
        if fault is not None and fault.kind.endswith("-next-page") and "limit" in query:
            payload = runaway_next_page(
                payload, query, path, self.base_url, endless=fault.kind == "endless-next-page"
            )
        if fault is not None and fault.kind in _AFTER_APPLY:
            return self._fault_response(fault.kind.removesuffix("-after-apply"), 0)
        return status, dict(_JSON), json.dumps(payload).encode()

    def _contract_problems(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> list[str]:
        content_type = headers.get("content-type", "")
        problems = request_errors(method, path, query.items(), content_type, body)
        if method in ("POST", "PUT") and content_type.startswith("application/json") and body:
            try:
                envelope = json.loads(body)
            except ValueError:
                envelope = None  # already reported by the contract check
            else:
                if not isinstance(envelope, dict) or not isinstance(envelope.get("data"), dict):
                    problems.append('data: Missing input: the body must be {"data": {...}}')
        if problems:
            with self._lock:
                self.violations.extend(f"{method} {path}: {problem}" for problem in problems)
        return problems

    def _fault_response(self, kind: str, retry_after: int) -> tuple[int, dict[str, str], bytes]:
        if kind == "429":
            error = ApiError(429, "You have made too many requests recently. Please, be chill.")
            headers = _JSON | {"Retry-After": str(retry_after)}
            return 429, headers, json.dumps(error.body()).encode()
        status, message = int(kind), _SERVER_ERROR_TEXT[kind]
        if status in (502, 504):
            # These come from the gateway, not from Asana's API: an HTML page, no JSON envelope.
            page = f"<html><body><h1>{status} {message}</h1></body></html>"
            return status, {"Content-Type": "text/html"}, page.encode()
        error = ApiError(status, message, phrase=True)
        return error.status, dict(_JSON), json.dumps(error.body()).encode()

    def transport(self) -> httpx.MockTransport:
        """Serve in-process: httpx.Client(transport=fake.transport(), base_url=...)."""

        def answer(request: httpx.Request) -> httpx.Response:
            query = dict(parse_qsl(request.url.query.decode(), keep_blank_values=True))
            try:
                status, headers, body = self.handle(
                    request.method, request.url.path, query, request.headers, request.read()
                )
            except DropConnection as drop:
                if drop.timeout:
                    raise httpx.ReadTimeout("timed out", request=request) from drop
                raise httpx.RemoteProtocolError(
                    "Server disconnected without sending a response.", request=request
                ) from drop
            return httpx.Response(status, headers=headers, content=body)

        return httpx.MockTransport(answer)
