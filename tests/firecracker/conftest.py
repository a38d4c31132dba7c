import pytest
import requests

from fcvm import DEADLINE, check_exchange, openapi, record


@pytest.fixture(autouse=True)
def exchanges(monkeypatch):
    """Every exchange any client makes in a test (both clients send through a
    `requests.Session`), checked against Firecracker's OpenAPI file when the test ends: a
    mismatch fails it, naming the exchange. Yields the list, for tests that look at it."""
    recorded = []
    hook = record(recorded)
    send = requests.Session.send

    def recording_send(session, request, **kwargs):
        response = send(session, request, **kwargs)
        hook(response)
        return response

    monkeypatch.setattr(requests.Session, "send", recording_send)
    yield recorded
    spec = openapi()
    for exchange in recorded:
        check_exchange(spec, *exchange)


@pytest.fixture
def processes():
    """Firecracker-mode microvms a test starts, killed and reaped at teardown whatever
    happened."""
    started = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=DEADLINE)
