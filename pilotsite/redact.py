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

# Asana PATs look like "2/1204.../1209...:0a1b..." or "1/123:abc"; bearer headers carry any token.
_PATTERNS = [
    re.compile(r"\b\d/\d+(?:/\d+)?:[0-9a-fA-F]{16,}\b"),
    re.compile(r"(?i)(bearer\s+)[^\s\"',]+"),
]
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
    out = _PATTERNS[0].sub(MASK, out)
    return _PATTERNS[1].sub(lambda m: m.group(1) + MASK, out)


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
