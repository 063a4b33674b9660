"""Text and links that come from outside: Asana (task names, comments, permalinks, emails)
and executors (result links, output). Anyone who can edit a task in the workspace writes
them, so they are never trusted to be a safe link, a single log line or an exact match.

One helper per rule, used everywhere such values are shown, logged or compared.
"""

import re
from urllib.parse import urlsplit

from django.utils.html import format_html
from django.utils.safestring import SafeString

WEB_SCHEMES = ("http", "https")
# C0 and C1 control characters (ESC starts terminal escape codes, CR/LF forge log lines)
# and the Unicode line and paragraph separators, which some viewers also break lines on.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
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


def printable(text: object) -> str:
    """`text` safe for one log line or a terminal: control characters become visible
    escapes (`\\n`, `\\x1b`), so outside text cannot start a forged line or send
    terminal escape codes. Printable text (any script) is unchanged."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))


def ascii_lower(text: str) -> str:
    """Lower-case A-Z only. Emails are compared this way: `str.lower()` also folds look-alikes
    such as the Kelvin sign (U+212A) into "k", so a crafted address could match another."""
    return text.translate(_ASCII_UPPER)
