"""`{% load untrusted %}{{ url|external_link:title }}`: a link from outside, linked only when
it is http(s) (see pilotsite.untrusted)."""

from django import template
from django.utils.safestring import SafeString

from pilotsite.untrusted import external_link as _external_link

register = template.Library()


@register.filter
def external_link(url: object, text: object = "") -> SafeString:
    return _external_link(url, text)
