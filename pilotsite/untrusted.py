"""Text and links that come from outside: Asana (task names, comments, permalinks, emails)
and executors (result links, output). Anyone who can edit a task in the workspace writes
them, so they are never trusted to be a safe link, a single log line or an exact match.

One helper per rule, used everywhere such values are shown, logged or compared.
"""

import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, OutputWrapper
from django.utils.html import format_html
from django.utils.safestring import SafeString

WEB_SCHEMES = ("http", "https")
# C0 and C1 control characters (ESC starts terminal escape codes, CR/LF forge log lines)
# and the Unicode line and paragraph separators, which some viewers also break lines on.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_FORMATTER = logging.Formatter()
_ASCII_UPPER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def web_url(value: object) -> str:
    """`value` when it is an absolute http(s) URL with a host, else "".

    Anything else (`javascript:`, `data:`, a relative path, a URL with whitespace or
    control characters in it) must be shown as text, never followed as a link.
    """
    url = str(value or "").strip()
    if not url or _CONTROL.search(url) or any(c.isspace() for c in url):
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:  # an invalid IPv6 host, say
        return ""
    if parts.scheme.lower() not in WEB_SCHEMES or not parts.hostname:
        return ""
    return url


def external_link(url: object, text: object = "") -> SafeString:
    """HTML for a link from outside: `<a>` (new tab, no referrer) when `url` is http(s),
    else the text (or the URL itself) escaped, as plain text."""
    href = web_url(url)
    label = str(text or url or "")
    if not href:
        return format_html("{}", label)
    return format_html('<a href="{}" rel="noopener noreferrer" target="_blank">{}</a>', href, label)


def printable(text: object, *, keep: str = "") -> str:
    """`text` safe for one log line or a terminal: control characters (except those in
    `keep`) become visible escapes (`\\n`, `\\x1b`), so outside text cannot start a forged
    line or send terminal escape codes. Printable text (any script) is unchanged."""

    def escape(match: re.Match) -> str:
        char = match.group()
        return char if char in keep else char.encode("unicode_escape").decode("ascii")

    return _CONTROL.sub(escape, str(text))


class PrintableFilter(logging.Filter):
    """Log handlers' filter: a record's message is one line, whatever it quotes (task names,
    comments, Asana's error texts); a traceback keeps its line breaks, nothing else."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        escaped = printable(message)
        if escaped != message:
            record.msg, record.args = escaped, None
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = printable(record.exc_text, keep="\n")
        return True


class PrintableOutput(OutputWrapper):
    """A management command's stdout/stderr that escapes control characters other than line
    breaks and tabs in what it is given (styles are applied afterwards, so colours work)."""

    # OutputWrapper.write itself departs from TextIOBase.write (django-stubs ignores that
    # override the same way); this one keeps OutputWrapper's signature.
    def write(  # type: ignore[override]
        self,
        msg: str = "",
        style_func: Callable[[str], str] | None = None,
        ending: str | None = None,
    ) -> None:
        super().write(printable(msg, keep="\n\t"), style_func, ending)


class PrintableOutputCommand(BaseCommand):
    """A command whose output may quote Asana's text: see PrintableOutput."""

    def __setattr__(self, name: str, value: Any) -> None:
        # BaseCommand sets `stdout`/`stderr` in __init__ and again in execute() (for
        # call_command's stdout=...): every stream it sets is made printable.
        if name in ("stdout", "stderr") and type(value) is OutputWrapper:
            # django-stubs does not declare OutputWrapper._out, the stream it wraps.
            wrapped = PrintableOutput(value._out, value.ending)  # type: ignore[arg-type]
            wrapped.style_func = value.style_func
            value = wrapped
        super().__setattr__(name, value)


def ascii_lower(text: str) -> str:
    """Lower-case A-Z only. Emails are compared this way: `str.lower()` also folds look-alikes
    such as the Kelvin sign (U+212A) into "k", so a crafted address could match another."""
    return text.translate(_ASCII_UPPER)
