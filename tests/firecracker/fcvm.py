"""What the Firecracker client tests share: the microvm binary and tiny guests they run,
and starting, reading and stopping a Firecracker-mode microvm."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 30


def microvm_bin() -> str:
    path = os.environ.get("MICROVM_BIN") or str(REPO / "target/debug/microvm")
    if not os.access(path, os.X_OK):
        pytest.fail(f"no microvm binary (MICROVM_BIN): {path!r}")
    return path


def guest(name: str) -> Path:
    directory = os.environ.get("TINY_GUESTS") or str(REPO / "target/qmp-guests")
    path = Path(directory) / f"{name}.elf"
    if not path.exists():
        pytest.fail(f"no tiny guest {path} (cargo run -p tiny-guest -- write DIR; TINY_GUESTS=DIR)")
    return path


def start(socket: Path, *extra: str):
    """A Firecracker-mode microvm whose serial console (stdout) is kept, once its API
    socket is there."""
    process = subprocess.Popen([microvm_bin(), "--api-sock", str(socket), *extra], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + DEADLINE
    while not socket.exists():
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "no API socket"
        time.sleep(0.01)
    return process


def counts(process, at_least: int) -> list:
    """Reads the counter guest's lines from `process` until it printed `at_least` more."""
    values = []
    deadline = time.monotonic() + DEADLINE
    while len(values) < at_least:
        assert time.monotonic() < deadline, f"only {values} printed"
        line = process.stdout.readline()
        assert line, "the console closed"
        values.append(int(line))
    return values


def stop(process) -> list:
    """SIGTERM, reaped; the numbers the guest printed after the last line read."""
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=DEADLINE)
    errors = process.stderr.read().decode(errors="replace")
    assert "panicked" not in errors and "seccomp" not in errors, errors
    rest = process.stdout.read()
    return [int(line) for line in rest.split(b"\n") if line.strip().isdigit()]


# Firecracker's file as committed (openapi/SOURCE.md says which version and where from);
# FIRECRACKER_OPENAPI names another copy (e.g. a newer Firecracker's).
OPENAPI = REPO / "tests/firecracker/openapi/firecracker.yaml"
_SPEC = []


def openapi() -> dict:
    """Firecracker's OpenAPI file, read once."""
    if not _SPEC:
        import yaml

        _SPEC.append(yaml.safe_load(Path(os.environ.get("FIRECRACKER_OPENAPI") or OPENAPI).read_text()))
    return _SPEC[0]


def record(exchanges: list):
    """A `requests` response hook that appends (method, path, request body, status, answer
    body) to `exchanges`."""
    import json

    def hook(response, *args, **kwargs):
        request = response.request
        path = request.path_url.split("?")[0]
        body = json.loads(request.body) if request.body else None
        answer = response.json() if response.content else None
        exchanges.append((request.method, path, body, response.status_code, answer))
    return hook


def operation_for(spec, method, path):
    """The OpenAPI operation of a concrete path (`/drives/rootfs` matches `/drives/{drive_id}`)."""
    parts = path.rstrip("/").split("/") if path != "/" else [""]
    for template, operations in spec["paths"].items():
        tparts = template.rstrip("/").split("/") if template != "/" else [""]
        if len(tparts) == len(parts) and all(t == p or t.startswith("{") for t, p in zip(tparts, parts)):
            if method.lower() in operations:
                return operations[method.lower()]
    return None


def problem(spec, instance, schema):
    """Why `instance` does not match `schema` (None when it does)."""
    import jsonschema

    document = {"definitions": spec["definitions"], **schema}
    try:
        # Swagger 2.0 schemas are JSON Schema draft 4; the file's own schema check
        # (jsonschema.validate's) is skipped: it would run once per exchange.
        jsonschema.Draft4Validator(document).validate(instance)
    except jsonschema.ValidationError as e:
        return e.message
    return None


def check_exchange(spec, method, url, body, status, answer) -> bool:
    """One exchange against the file (the rule crates/fc-openapi applies to the Rust tests'):
    a request body the file rejects must have been refused with 400, one it accepts may get
    any documented status, each answer matches the schema of its status (or `default`), 204
    has no body, an error carries `fault_message`. Fails the test naming the exchange;
    returns whether it was a bad body refused as the file says."""
    import json

    what = f"{method} {url} {json.dumps(body)} -> {status} {json.dumps(answer)}"
    operation = operation_for(spec, method, url)
    assert operation is not None, f"{what}: not in the OpenAPI file"
    refused = False
    parameter = next((p for p in operation.get("parameters", []) if p.get("in") == "body"), None)
    if body is not None:
        assert parameter is not None, f"{what}: the operation takes no body"
        if (message := problem(spec, body, parameter["schema"])) is not None:
            assert status == 400, f"{what}: the file rejects the body ({message}), microvm answered {status}"
            refused = True
    elif parameter is not None and parameter.get("required"):
        assert status == 400, f"{what}: the file requires a body, microvm answered {status}"
        refused = True
    responses = operation.get("responses", {})
    documented = responses.get(status) or responses.get(str(status)) or responses.get("default")
    assert documented is not None, f"{what}: status {status} is not documented"
    if status == 204:
        assert answer is None, f"{what}: 204 with a body"
    elif "schema" in documented:
        assert (message := problem(spec, answer, documented["schema"])) is None, f"{what}: the answer: {message}"
    if status >= 400:
        assert isinstance((answer or {}).get("fault_message"), str), f"{what}: no fault_message"
    return refused
