"""The same Idempotency-Key sent by several clients at the same moment dials once (the unique constraint
decides; the losers get the first call, or 409 while it is still being placed)."""
import json
import threading

import pytest
from django.db import connections
from django.test import Client

from tests.api.helpers import outbound_setup

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_requests_with_one_key_dial_once(twilio_sandbox):
    twilio_sandbox.dial_outbound = False
    o = outbound_setup(sandbox=twilio_sandbox)
    body = json.dumps(o.body())
    barrier = threading.Barrier(6)
    statuses, ids = [], set()

    def send():
        try:
            barrier.wait(timeout=30)
            response = Client().post("/api/v1/calls", data=body, content_type="application/json",
                                     HTTP_AUTHORIZATION=f"Bearer {o.key}", HTTP_IDEMPOTENCY_KEY="race-1")
            statuses.append(response.status_code)
            if response.status_code in (200, 201):
                ids.add(response.json()["id"])
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert len(twilio_sandbox.requests_to(r"/Calls\.json$", "POST")) == 1
    assert statuses.count(201) == 1 and set(statuses) <= {200, 201, 409} and len(ids) == 1, statuses
