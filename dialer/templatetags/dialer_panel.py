"""`{% sandbox_signalling as name %}`: the local Twilio sandbox's Voice SDK signalling (host:port) or "" (the panel
shows its offline notice only when the sandbox does not answer the SDK)."""
from django import template

from dialer.tokens import sandbox_signalling as _sandbox_signalling

register = template.Library()


@register.simple_tag
def sandbox_signalling() -> str:
    return _sandbox_signalling()
