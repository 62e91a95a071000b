"""Campaigns' Celery tasks: thin (the scheduler lives in services)."""
from __future__ import annotations

from celery import shared_task
from django.utils.dateparse import parse_datetime

from campaigns import services


@shared_task(ignore_result=True)
def campaigns_tick(now: str | None = None) -> dict:
    """Beat runs this every few seconds; any number of workers may run it at once. `now` (ISO): a fixed clock."""
    return services.campaigns_tick(now=parse_datetime(now) if now else None)
