"""The one outbound seam to the language model: an OpenAI-compatible chat completions API.

`POST {LLM_API_BASE}/chat/completions` with `Authorization: Bearer LLM_API_KEY` and
`{"model": LLM_MODEL, "messages": [...]}`; the answer's `choices[0].message.content` is the
text. Each try waits at most `LLM_TIMEOUT` seconds; 429, 5xx and transport errors are tried
again up to `LLM_MAX_RETRIES` times with exponential backoff and jitter (tenacity), honouring
`Retry-After` on a 429. Everything raised is an `LLMError` whose message is for a person and
has been redacted (the key is registered as a secret before any request).
"""

import logging
from dataclasses import dataclass
from typing import Any

import httpx
import tenacity
from django.conf import settings

from pilotsite.redact import redact, register_secret

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 60.0


class LLMError(Exception):
    """The model could not give a draft; the message says why, for a person (redacted)."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class LLMNotConfigured(LLMError):
    """LLM_API_BASE, LLM_API_KEY or LLM_MODEL is not set."""


class LLMUnavailable(LLMError):
    """Unreachable, too slow, or still 429 / 5xx after the retries: try again later."""


class LLMRejected(LLMError):
    """The endpoint refused the request (a 4xx other than 429): check the settings."""


class LLMMalformedResponse(LLMError):
    """A 2xx answer without `choices[0].message.content` as text."""


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class LLMSettings:
    """Where the model is; `enabled` only when all three are set."""

    base: str
    key: str
    model: str
    timeout: float
    retries: int

    @classmethod
    def from_settings(cls) -> "LLMSettings":
        return cls(
            base=settings.LLM_API_BASE.rstrip("/"),
            key=settings.LLM_API_KEY,
            model=settings.LLM_MODEL,
            timeout=settings.LLM_TIMEOUT,
            retries=settings.LLM_MAX_RETRIES,
        )

    @property
    def enabled(self) -> bool:
        return bool(self.base and self.key and self.model)


def is_enabled() -> bool:
    """Status drafts are offered only when the endpoint is configured."""
    return LLMSettings.from_settings().enabled


def _wait(retry_state: tenacity.RetryCallState) -> float:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    if isinstance(exc, _Retryable) and exc.retry_after is not None:
        return min(exc.retry_after, MAX_RETRY_AFTER)
    return tenacity.wait_random_exponential(multiplier=0.5, max=20)(retry_state)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


def complete(
    messages: list[dict[str, str]],
    *,
    config: LLMSettings | None = None,
    transport: httpx.BaseTransport | None = None,
) -> str:
    """The model's answer to `messages` ([{"role": "system"|"user", "content": str}]), as text.

    Raises LLMNotConfigured, LLMUnavailable, LLMRejected or LLMMalformedResponse.
    """
    config = config or LLMSettings.from_settings()
    if not config.enabled:
        raise LLMNotConfigured("Status drafts need LLM_API_BASE, LLM_API_KEY and LLM_MODEL.")
    register_secret(config.key)
    url = f"{config.base}/chat/completions"
    body = {"model": config.model, "messages": messages}
    headers = {"Authorization": f"Bearer {config.key}"}

    with httpx.Client(timeout=config.timeout, transport=transport) as http:

        def attempt() -> httpx.Response:
            try:
                response = http.post(url, json=body, headers=headers)
            except httpx.TimeoutException as exc:
                raise _Retryable(f"the model did not answer within {config.timeout:g} s") from exc
            except httpx.TransportError as exc:
                raise _Retryable(f"the model's endpoint {config.base} is unreachable") from exc
            if response.status_code in RETRY_STATUSES:
                raise _Retryable(
                    f"the model's endpoint answered {response.status_code}",
                    _retry_after(response) if response.status_code == 429 else None,
                )
            return response

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retryable),
            stop=tenacity.stop_after_attempt(config.retries + 1),
            wait=_wait,
            reraise=True,
        )
        try:
            response = retrying(attempt)
        except _Retryable as exc:
            log.warning("status draft: %s", redact(str(exc)))
            raise LLMUnavailable(f"No draft: {exc}; try again later.") from None
    if response.status_code >= 400:
        raise LLMRejected(
            f"No draft: the model's endpoint refused the request ({response.status_code}); "
            "check LLM_API_BASE, LLM_API_KEY and LLM_MODEL."
        )
    return _content(response)


def _content(response: httpx.Response) -> str:
    try:
        payload: Any = response.json()
        text = payload["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        text = None
    if not isinstance(text, str) or not text.strip():
        raise LLMMalformedResponse("No draft: the model's answer had no text.")
    return text.strip()
