"""The one rule for what an Asana access token may contain, for every path that takes one
(the connect form, Replace token, `asana connect`'s prompt, ASANA_ACCESS_TOKEN, the client).

Asana's personal access tokens and OAuth access tokens are sent as an HTTP `Authorization:
Bearer` credential (https://developers.asana.com/docs/authentication), whose characters are
visible ASCII (RFC 6750 section 2.1, `b64token`; in practice `1/123...:abc...` or
`2/123.../456...:abc...`). A token copied from a chat or a password manager can carry a
zero-width space or a non-breaking space that the eye does not see; httpx cannot even encode
such a header. Whitespace around the token is dropped, as a person expects when pasting.
"""

import unicodedata

from django import forms

MAX_LENGTH = 512


class InvalidToken(ValueError):
    """The text cannot be an Asana token; the message says what to do and shows no token."""


def _describe(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" {name}" if name else "")


def clean_token(value: str | None) -> str:
    """`value` without surrounding whitespace; raises InvalidToken when empty, too long, or
    holding any character outside visible ASCII (`!` to `~`)."""
    token = (value or "").strip()
    if not token:
        raise InvalidToken(
            "Enter the personal access token (Asana: My settings → Apps → Developer apps)."
        )
    for position, char in enumerate(token, start=1):
        if "!" <= char <= "~":
            continue
        if char in " \t\r\n":
            raise InvalidToken(
                f"The token contains a space or line break (character {position}); a token "
                "never does. Paste it again exactly as Asana shows it."
            )
        raise InvalidToken(
            f"The token contains an invisible or non-ASCII character ({_describe(char)}, "
            f"character {position}) that cannot be part of an Asana token. Paste it again "
            "without invisible characters: copy it straight from Asana, or through a "
            "plain-text editor."
        )
    if len(token) > MAX_LENGTH:
        raise InvalidToken(
            f"The token is {len(token)} characters long; Asana tokens are far shorter. "
            "Paste only the token."
        )
    return token


class TokenField(forms.CharField):
    """A password input for an Asana token, cleaned by clean_token (never shown again)."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault(
            "widget", forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"})
        )
        kwargs.setdefault("strip", True)
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        if value in self.empty_values:
            return value
        try:
            return clean_token(value)
        except InvalidToken as exc:
            raise forms.ValidationError(str(exc), code="invalid_token") from None
