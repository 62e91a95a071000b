"""`{{ turn|latency_stages }}`: an answered turn's latency as the time each stage took (the stored figures are
cumulative, from the caller's end of turn): recognition (end-of-turn wait + the recogniser's text), the model's
first token, the first speech bytes, and sending (the pipeline's own share: resampling, μ-law, framing)."""
from django import template

register = template.Library()

STAGES = (("recognition", "recognition_ms"), ("model", "first_token_ms"), ("speech", "first_byte_ms"),
          ("sending", "latency_ms"))


@register.filter
def latency_stages(turn) -> list[tuple[str, int]]:
    stages, before = [], 0
    for label, field in STAGES:
        at = getattr(turn, field, None)
        if at is None:
            continue
        stages.append((label, max(0, at - before)))
        before = max(before, at)
    return stages
