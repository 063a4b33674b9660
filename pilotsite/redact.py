"""Keep secrets out of logs, error messages and anything shown to a person.

Secrets are registered when they are loaded (the Asana client registers its token), and
anything shaped like an Asana personal access token or a bearer header is masked even
when it was never registered.
"""

import logging
import re
import threading

_lock = threading.Lock()
_known: set[str] = set()

# Asana PATs look like "2/1204.../1209...:0a1b..." or "1/123:abc". Executor output is
# posted to Asana, so well-known token shapes of other services are masked too.
_TOKEN_SHAPES = re.compile(
    r"\b\d/\d+(?:/\d+)?:[0-9a-fA-F]{16,}\b"  # Asana personal access token
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}\b"  # GitHub
    r"|\bgithub_pat_[A-Za-z0-9_]{20,}\b"
    r"|\bglpat-[A-Za-z0-9_-]{20,}\b"  # GitLab
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}\b"  # Slack
    r"|\bsk-[A-Za-z0-9_-]{20,}\b"  # OpenAI / Anthropic style API keys
    r"|\bAKIA[0-9A-Z]{16}\b"  # AWS access key id
)
# "Bearer x", "token=x", "password: x", "api_key=x", "Authorization: Basic x" ...
_LABELLED = re.compile(
    r"(?i)(\bbearer\s+|\bbasic\s+|\b(?:[a-z_]*_)?(?:token|secret|password|passwd|pwd|api_?key)"
    r"\b[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&]+"
)
MASK = "[redacted]"


def register_secret(secret: str | None) -> None:
    if secret and len(secret) >= 6:
        with _lock:
            _known.add(secret)


def redact(text: object, *secrets: str | None) -> str:
    out = str(text)
    with _lock:
        known = sorted(_known | {s for s in secrets if s}, key=len, reverse=True)
    for secret in known:
        out = out.replace(secret, MASK)
    out = _TOKEN_SHAPES.sub(MASK, out)
    return _LABELLED.sub(lambda m: m.group(1) + MASK, out)


def mask(secret: str | None) -> str:
    """Show only the last four characters, the way the admin displays tokens."""
    if not secret:
        return ""
    return "•" * 8 + secret[-4:]


class RedactingFilter(logging.Filter):
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
