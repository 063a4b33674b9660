"""What Django's error reports (the `DEBUG` error page and error emails) may show.

Django honours `sensitive_variables` / `sensitive_post_parameters` only when `DEBUG` is off,
on the grounds that a DEBUG site is not safe anyway; but DEBUG is what a developer turns on
while connecting a real workspace, and a token on a page travels (screenshots, pasted
tracebacks). Here the markers always apply, a value that holds a registered secret or a
token shape is redacted in any frame (a library's frame holding an `Authorization` header,
say), and settings or environment variables carrying a URL with a password are hidden too. And a
request Django refused is logged as one line, without a traceback.
"""

import logging
import re
from pprint import pformat
from typing import Any

from django.views.debug import SafeExceptionReporterFilter

from pilotsite.redact import redact


class _Shown:
    """A value already turned into (redacted) text; the report prints it as is."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class PilotExceptionReporterFilter(SafeExceptionReporterFilter):
    """`DEFAULT_EXCEPTION_REPORTER_FILTER`: Django's safe filter, active whatever `DEBUG` is."""

    hidden_settings = re.compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|DATABASE_URL|REDIS", flags=re.I
    )

    def is_active(self, request: Any) -> bool:
        return True

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        cleansed = []
        for name, value in super().get_traceback_frame_variables(request, tb_frame):
            if value is not self.cleansed_substitute:
                try:
                    shown = pformat(value)
                except Exception:  # Django's report says so itself
                    shown = None
                if shown is not None and redact(shown) != shown:
                    value = _Shown(redact(shown))
            cleansed.append((name, value))
        return cleansed


class RefusedRequestFilter(logging.Filter):
    """Log handlers' filter: a request Django refused (a 4xx that `django.request` or
    `django.security` logs as a warning, a 403 say) is one line, without the traceback
    Django attaches: the refusal is expected and its traceback only points at the check that
    refused. Errors (5xx) keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR and record.name.startswith(
            ("django.request", "django.security")
        ):
            record.exc_info = None
            record.exc_text = None
        return True
