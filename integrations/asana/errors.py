"""Typed Asana errors. Each says whether retrying could help (`permanent`) and what to do."""

from pilotsite.redact import redact


class AsanaError(Exception):
    """Base for every failure talking to Asana."""

    permanent = True
    advice = "check the request and try again"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str = "",
        path: str = "",
        detail: str = "",
    ) -> None:
        self.status = status
        self.method = method
        self.path = path
        self.detail = redact(detail)
        super().__init__(redact(message))


class AsanaInvalidRequest(AsanaError):
    advice = "check the values given (Asana's reason follows); if they are right, report a bug"


class AsanaAuthError(AsanaError):
    advice = "generate a new personal access token in Asana (My settings → Apps → Developer apps)"


class AsanaPaymentRequired(AsanaError):
    advice = "this feature needs a paid Asana plan for the workspace"


class AsanaForbidden(AsanaError):
    advice = "the token's user has no access to this resource; share it with that user or use another token"


class AsanaNotFound(AsanaError):
    advice = "check the GID; the object may have been deleted or is not visible to this token"


class AsanaRateLimited(AsanaError):
    permanent = False
    advice = "Asana is rate-limiting this token; lower the request budget or try again later"


class AsanaServerError(AsanaError):
    permanent = False
    advice = "Asana is having trouble; try again later"


class AsanaUnavailable(AsanaError):
    """Timeouts and connection failures: the request may or may not have been applied."""

    permanent = False
    advice = "Asana could not be reached; check the network and ASANA_API_BASE_URL, then try again"
    # Why, for messages to people: "timeout" (Asana was slow), "connect" (the address could
    # not be reached: network or ASANA_API_BASE_URL), or "" (the request budget's store).
    cause = ""


class AsanaOutcomeUnknown(AsanaUnavailable):
    """A create (a non-idempotent POST) was sent and may have been applied: the answer was a
    5xx or never came. The client does not resend it; `creates.create_once` looks whether it
    landed first. `status` is the 5xx received, or None when the answer was lost."""

    advice = "Asana may have applied it; check before trying again"


_BY_STATUS: dict[int, tuple[type[AsanaError], str]] = {
    400: (AsanaInvalidRequest, "Asana rejected the request as invalid"),
    401: (AsanaAuthError, "the token was rejected by Asana"),
    402: (AsanaPaymentRequired, "Asana requires a paid plan for this"),
    403: (AsanaForbidden, "Asana refused access"),
    404: (AsanaNotFound, "Asana could not find the object"),
    429: (AsanaRateLimited, "Asana rate limit exceeded"),
}


def error_for_status(
    status: int, envelope_messages: list[str], *, method: str, path: str
) -> AsanaError:
    cls: type[AsanaError]
    if status >= 500:
        cls, summary = AsanaServerError, "Asana had a server error"
    else:
        cls, summary = _BY_STATUS.get(status, (AsanaError, "Asana answered with an error"))
    detail = "; ".join(m for m in envelope_messages if m)
    text = f"{summary} ({status}): {cls.advice}"
    if detail:
        text += f". Asana said: {detail.rstrip('.')}"
    return cls(text, status=status, method=method, path=path, detail=detail)


class AsanaMalformedResponse(AsanaError):
    """A 2xx answer that is not Asana's envelope: not a JSON object, no `data`, or `data` of
    the wrong shape (https://developers.asana.com/docs/response-format: every successful
    answer is `{"data": ...}`, an object for one resource, a list for a collection)."""

    permanent = False
    advice = (
        "something between pilotsite and Asana (a proxy, or ASANA_API_BASE_URL pointing at the "
        "wrong server) answered instead of Asana; check ASANA_API_BASE_URL and try again"
    )


class AsanaPaginationError(AsanaError):
    """A list that does not end: a repeated `next_page.offset`, or more pages than
    ASANA_MAX_PAGES (https://developers.asana.com/docs/pagination)."""

    advice = (
        "the list was not read to its end; if the list really is that long, raise "
        "ASANA_MAX_PAGES, otherwise check ASANA_API_BASE_URL"
    )
