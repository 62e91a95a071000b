import pytest

from connectors.selectors import webhook_call_cache_clear


@pytest.fixture(autouse=True)
def _forget_webhook_calls():
    """The incoming-call webhook keeps what it read per process: no test sees another's entries."""
    webhook_call_cache_clear()
    yield
    webhook_call_cache_clear()
