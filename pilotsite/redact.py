"""Keep secrets out of logs, error messages and anything shown to a person or sent to Asana.

`redact(text)` masks, in this order:

1. pilotsite's own secrets by value: `SECRET_KEY`, `FIELD_ENCRYPTION_KEY`, the database's
   and Redis's passwords (read from the settings at each call, so a changed setting counts),
   and every value registered with `register_secret` (Asana tokens, webhook secrets). The
   registry keeps the most recently registered `REGISTRY_MAX` values.
2. Credentials inside URLs: `postgres://user:pass@host/db` becomes
   `postgres://user:[redacted]@host/db`.
3. Values shaped like a known kind of secret, wherever they appear: Asana personal access
   tokens, GitHub / GitLab / Slack tokens, `sk-` API keys, AWS access key ids and secret
   access keys.
4. Assignments whose name contains KEY, SECRET, TOKEN or PASSWORD (`SECRET_KEY=…`,
   `AWS_SECRET_ACCESS_KEY = "…"`, `?access_token=…`, `"api_key": "…"`), and the credentials
   of `Authorization:` headers and `Bearer` / `Basic` schemes.
5. `token: x` / `password: x` with an unquoted value only when the value looks like a
   secret (it has a digit, a symbol or mixed case, or is long): ordinary sentences such as
   "Asana did not accept the token: the token was rejected" stay as they are.
"""

import contextlib
import logging
import re
import threading
from collections import OrderedDict
from urllib.parse import urlsplit

MASK = "[redacted]"
# Enough for every connection's token and every webhook's secret of a large deployment;
# the oldest registrations go first, so memory stays bounded however many are rotated.
REGISTRY_MAX = 1024
# Shorter values would mask ordinary words; nothing pilotsite stores is that short.
MIN_SECRET_LENGTH = 6

_lock = threading.Lock()
_known: OrderedDict[str, None] = OrderedDict()

_URL_CREDENTIALS = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@\"'<>]*:)([^\s@/\"'<>]+)(@)")
_TOKEN_SHAPES = re.compile(
    r"\b\d/\d+(?:/\d+)?:[0-9a-fA-F]{16,}\b"  # Asana personal access token
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}\b"  # GitHub
    r"|\bgithub_pat_[A-Za-z0-9_]{20,}\b"
    r"|\bglpat-[A-Za-z0-9_-]{20,}\b"  # GitLab
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}\b|\bxapp-[A-Za-z0-9-]{10,}\b"  # Slack
    r"|\bsk-[A-Za-z0-9_-]{20,}\b"  # OpenAI / Anthropic style API keys
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # AWS access key id
    # AWS secret access key: 40 base64 characters with upper and lower case letters and a
    # digit, which a git commit hash (lower-case hex) or a word never has.
    r"|(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+=]{0,39}[a-z])(?=[A-Za-z0-9/+=]{0,39}[A-Z])"
    r"(?=[A-Za-z0-9/+=]{0,39}[0-9])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"
)
_SECRET_NAME = r"[A-Za-z0-9_.-]*(?:key|secret|token|password|passwd|pwd)[A-Za-z0-9_.-]*"  # noqa: S105
_VALUE = r"(?:\"[^\"\n]*\"|'[^'\n]*'|[^\s\"',;&]+)"
# NAME=value, NAME = "value", ?name=value: an assignment, whatever the value looks like.
_ASSIGNMENT = re.compile(rf"(?i)(\b{_SECRET_NAME}\s*=\s*)({_VALUE})")
# "name": "value" and 'name': 'value' (JSON, YAML, Python dicts): a quoted value is data.
_QUOTED_PAIR = re.compile(rf"(?i)([\"']?\b{_SECRET_NAME}[\"']?\s*:\s*)(\"[^\"\n]*\"|'[^'\n]*')")
_AUTHORIZATION = re.compile(r"(?i)(\bauthorization\s*[:=]\s*(?:[A-Za-z]+\s+)?)([^\s\"',;&]+)")
_SCHEME = re.compile(r"(?i)(\b(?:bearer|basic)\s+)([A-Za-z0-9._~+/=-]{8,})")
# name: value with an unquoted value: masked only when the value looks like a secret.
_LABELLED = re.compile(rf"(?i)(\b{_SECRET_NAME}\s*:\s*)([^\s\"',;&]+)")


def register_secret(secret: str | None) -> None:
    """Mask `secret` (a token, a webhook secret) by value from now on, in this process.

    Values shorter than MIN_SECRET_LENGTH are ignored; the registry is bounded to
    REGISTRY_MAX values, forgetting the least recently registered first.
    """
    if not secret or len(secret) < MIN_SECRET_LENGTH:
        return
    with _lock:
        _known[secret] = None
        _known.move_to_end(secret)
        while len(_known) > REGISTRY_MAX:
            _known.popitem(last=False)


def registered_count() -> int:
    """How many values the registry holds (at most REGISTRY_MAX)."""
    with _lock:
        return len(_known)


def configured_secrets() -> list[str]:
    """pilotsite's own secrets from the settings: keys (the LLM key too) and the database /
    Redis passwords.

    Empty before Django's settings are configured (a log line at start-up, say).
    """
    from django.conf import settings

    if not settings.configured:
        return []
    values = [
        getattr(settings, "SECRET_KEY", ""),
        getattr(settings, "FIELD_ENCRYPTION_KEY", ""),
        getattr(settings, "LLM_API_KEY", ""),
        *(db.get("PASSWORD") or "" for db in getattr(settings, "DATABASES", {}).values()),
    ]
    redis_url = getattr(settings, "REDIS_URL", "")
    if redis_url:
        with contextlib.suppress(ValueError):
            values.append(urlsplit(redis_url).password or "")
    return [str(v) for v in values if v and len(str(v)) >= MIN_SECRET_LENGTH]


def _looks_secret(value: str) -> bool:
    if len(value) >= 24:
        return True
    if len(value) < MIN_SECRET_LENGTH:
        return bool(re.search(r"\d", value)) and bool(re.search(r"[A-Za-z]", value))
    has_digit = bool(re.search(r"\d", value))
    has_symbol = bool(re.search(r"[^A-Za-z0-9]", value.rstrip(".!?)")))
    mixed_case = bool(re.search(r"[a-z]", value)) and bool(re.search(r"[A-Z]", value[1:]))
    return has_digit or has_symbol or mixed_case


def _mask_value(match: re.Match) -> str:
    value = match.group(2)
    if value[:1] in "\"'" and value[-1:] == value[:1] and len(value) >= 2:
        return f"{match.group(1)}{value[0]}{MASK}{value[0]}"
    return match.group(1) + MASK


def _mask_if_secret(match: re.Match) -> str:
    value = match.group(2)
    return match.group(1) + MASK if value != MASK and _looks_secret(value) else match[0]


def redact(text: object, *secrets: str | None) -> str:
    """`text` as a string with every secret pilotsite knows of masked as MASK.

    `secrets` adds values to mask for this call only (a token not registered yet).
    """
    out = str(text)
    with _lock:
        known = set(_known)
    known |= {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}
    known |= set(configured_secrets())
    for secret in sorted(known, key=len, reverse=True):
        out = out.replace(secret, MASK)
    out = _URL_CREDENTIALS.sub(lambda m: m.group(1) + MASK + m.group(3), out)
    out = _TOKEN_SHAPES.sub(MASK, out)
    out = _ASSIGNMENT.sub(_mask_value, out)
    out = _QUOTED_PAIR.sub(_mask_value, out)
    for pattern in (_AUTHORIZATION, _SCHEME, _LABELLED):
        out = pattern.sub(_mask_if_secret, out)
    return out


def mask(secret: str | None) -> str:
    """Show only the last four characters, the way the admin displays tokens."""
    if not secret:
        return ""
    return "•" * 8 + secret[-4:]


class RedactingFilter(logging.Filter):
    """A logging filter that passes every record through `redact`, tracebacks included."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        # `log.exception(...)` prints the traceback, exception messages included; formatters
        # reuse a cached `exc_text`, so cleaning it here cleans what every handler writes.
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
