"""A published Firecracker client (hysn-firecracker-python's `Api`) configures, starts,
pauses, resumes, snapshots and restores a tiny guest through microvm's Firecracker front end; every request and
answer is validated against Firecracker's OpenAPI file (tests/firecracker/openapi/, or the copy
FIRECRACKER_OPENAPI names)."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from fcvm import DEADLINE, REPO, counts, guest, microvm_bin, start, stop

# Firecracker's file as committed (openapi/SOURCE.md says which version and where from).
OPENAPI = REPO / "tests/firecracker/openapi/firecracker.yaml"

# Every exchange the client made: (method, path, request body, status, answer body).
EXCHANGES = []


def record(response, *args, **kwargs):
    request = response.request
    path = request.path_url.split("?")[0]
    body = json.loads(request.body) if request.body else None
    answer = response.json() if response.content else None
    EXCHANGES.append((request.method, path, body, response.status_code, answer))


@pytest.fixture
def firecracker(tmp_path):
    from firecracker.api import Api

    socket = tmp_path / "firecracker.socket"
    process = subprocess.Popen([microvm_bin(), "--api-sock", str(socket), "--id", "client-test"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + DEADLINE
    while not socket.exists():
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "no API socket"
        time.sleep(0.01)
    api = Api(str(socket))
    api.session.hooks["response"].append(record)
    yield api, process
    api.close()
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    process.wait(timeout=DEADLINE)
    errors = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    print(errors)
    assert "panicked" not in errors and "seccomp" not in errors, errors


def test_configure_start_pause_resume(firecracker, tmp_path):
    from firecracker.exceptions import APIError

    api, process = firecracker
    assert api.describe.get().json()["state"] == "Not started"
    assert api.version.get().json()["firecracker_version"]
    rootfs = tmp_path / "rootfs.ext4"
    rootfs.write_bytes(bytes(4096))
    api.machine_config.put(vcpu_count=1, mem_size_mib=32)
    api.boot.put(kernel_image_path=str(guest("counter")), boot_args="console=ttyS0 reboot=k panic=1")
    bandwidth = {"size": 10000000, "refill_time": 1000}
    api.drive.put(drive_id="rootfs", path_on_host=str(rootfs), is_root_device=True, is_read_only=False,
                  rate_limiter={"bandwidth": bandwidth})
    api.logger.put(level="Warning")
    api.mmds.put(latest={"meta-data": {"instance-id": "i-1"}})
    assert raw(api, "PATCH", "/mmds", {"latest": {"meta-data": {"ami-id": "a"}}})[0] == 204
    assert raw(api, "PUT", "/balloon", {"amount_mib": 0, "deflate_on_oom": True, "stats_polling_interval_s": 1}) \
        == (204, None)
    assert raw(api, "GET", "/balloon")[1]["deflate_on_oom"] is True
    entropy_limit = {"ops": {"size": 100, "one_time_burst": 50, "refill_time": 1000}}
    assert raw(api, "PUT", "/entropy", {"rate_limiter": entropy_limit})[0] == 204
    # A custom CPU template: the hypervisor bit (leaf 1 ECX 31) cleared, the rest kept.
    template = {"kvm_capabilities": ["!36"], "cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0", "flags": 0,
                "modifiers": [{"register": "ecx", "bitmap": "0b0" + "x" * 31}]}]}
    assert raw(api, "PUT", "/cpu-config", template) == (204, None)
    status, fault = raw(api, "PUT", "/cpu-config", {"msr_modifiers": [{"addr": "0x10", "bitmap": "0b2"}]})
    assert status == 400 and "as a bitmap" in fault["fault_message"], fault
    metrics = tmp_path / "metrics.fifo"
    os.mkfifo(metrics)
    assert raw(api, "PUT", "/metrics", {"metrics_path": str(metrics)})[0] == 204, "a pipe nobody reads yet"
    status, fault = raw(api, "PATCH", "/vm", {"state": "Paused"})
    assert status == 400 and "before starting" in fault["fault_message"]
    with pytest.raises(APIError, match="Vsock config error: guest_cid 2"):
        api.vsock.put(guest_cid=2, uds_path=str(tmp_path / "v.sock"))
    api.vsock.put(guest_cid=3, uds_path=str(tmp_path / "v.sock"))
    assert raw(api, "GET", "/vm/config")[1]["vsock"] == {"guest_cid": 3, "uds_path": str(tmp_path / "v.sock")}
    with pytest.raises(APIError, match="Load snapshot error: snapshot .*no-such"):
        api.load_snapshot.put(snapshot_path=str(tmp_path / "no-such"),
                              mem_backend={"backend_type": "File", "backend_path": "m"})
    api.actions.put(action_type="InstanceStart")
    assert api.describe.get().json()["state"] == "Running"
    api.vm.patch(state="Paused")
    assert api.describe.get().json()["state"] == "Paused"
    api.create_snapshot.put(snapshot_type="Full", snapshot_path=str(tmp_path / "state"),
                            mem_file_path=str(tmp_path / "mem"))
    # All of RAM (sparse), then the 4 KiB memory tag (docs/snapshot.md).
    assert (tmp_path / "mem").stat().st_size == (32 << 20) + 4096
    assert api.describe.get().json()["state"] == "Paused"
    api.vm.patch(state="Resumed")
    status, stats = raw(api, "GET", "/balloon/statistics")
    assert status == 200 and stats["target_pages"] == 0, stats
    assert raw(api, "PATCH", "/balloon", {"amount_mib": 8}) == (204, None)
    assert raw(api, "GET", "/balloon")[1]["amount_mib"] == 8
    assert raw(api, "GET", "/balloon/statistics")[1]["target_mib"] == 8
    assert raw(api, "PATCH", "/balloon/statistics", {"stats_polling_interval_s": 2}) == (204, None)
    reader = os.open(metrics, os.O_RDONLY | os.O_NONBLOCK)
    try:
        api.actions.put(action_type="FlushMetrics")
        # The line written at start waits in the pipe too (as with Firecracker): read all.
        text = b""
        while chunk := read_available(reader):
            text += chunk
        lines = [json.loads(line) for line in text.decode().splitlines()]
        assert len(lines) >= 2 and all(line["utc_timestamp_ms"] > 0 for line in lines), lines
        assert sum(line["put_api_requests"]["actions_count"] for line in lines) == 1, "InstanceStart"
    finally:
        os.close(reader)
    assert api.machine_config.get().json()["mem_size_mib"] == 32
    ops = {"size": 50, "refill_time": 100}
    api.drive.patch(drive_id="rootfs", rate_limiter={"ops": ops})
    config = api.vm_config.get().json()
    assert config["drives"][0]["drive_id"] == "rootfs"
    assert config["drives"][0]["rate_limiter"] == {"bandwidth": bandwidth, "ops": ops}, config["drives"]
    assert config["entropy"]["rate_limiter"] == entropy_limit
    assert config["balloon"]["amount_mib"] == 8
    assert config["cpu-config"] == template, config
    assert api.mmds.get().json()["latest"]["meta-data"]["instance-id"] == "i-1"
    with pytest.raises(APIError, match="not supported after starting the microVM"):
        api.boot.put(kernel_image_path=str(guest("counter")))
    assert process.poll() is None, "microvm is still running"


def read_available(fd: int) -> bytes:
    """What a non-blocking pipe holds now (b"" once empty)."""
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return b""


def test_snapshot_then_restore_in_a_new_process(tmp_path, processes):
    """The client's own snapshot calls: create on the paused VM, load into a new process
    that had no configuration, and the guest counts on from where it was."""
    from firecracker.api import Api

    first = start(tmp_path / "fc1.socket")
    processes.append(first)
    api = Api(str(tmp_path / "fc1.socket"))
    api.session.hooks["response"].append(record)
    api.machine_config.put(vcpu_count=1, mem_size_mib=32)
    api.boot.put(kernel_image_path=str(guest("counter")), boot_args="console=ttyS0")
    # A CPU template travels in the snapshot's configuration (the vCPUs' CPUID with it).
    template = {"cpuid_modifiers": [{"leaf": "0x0", "subleaf": "0x0", "flags": 0,
                "modifiers": [{"register": "ebx", "bitmap": "0b" + "x" * 31 + "1"}]}]}
    assert raw(api, "PUT", "/cpu-config", template) == (204, None)
    api.actions.put(action_type="InstanceStart")
    before = counts(first, 3)
    api.vm.patch(state="Paused")
    api.create_snapshot.put(snapshot_type="Full", snapshot_path=str(tmp_path / "state"),
                            mem_file_path=str(tmp_path / "mem"))
    api.close()
    printed = before + stop(first)  # with what was printed between the last line read and the pause

    second = start(tmp_path / "fc2.socket")
    processes.append(second)
    api = Api(str(tmp_path / "fc2.socket"))
    api.session.hooks["response"].append(record)
    api.load_snapshot.put(snapshot_path=str(tmp_path / "state"),
                          mem_backend={"backend_type": "File", "backend_path": str(tmp_path / "mem")},
                          resume_vm=True)
    assert api.describe.get().json()["state"] == "Running"
    assert raw(api, "GET", "/vm/config")[1]["cpu-config"] == template
    after = counts(second, 3)
    api.close()
    stop(second)
    # The first number the restored guest completes follows the last the first one did
    # (a number cut in half by the pause is finished by the restored guest).
    assert after[0] == printed[-1] + 1, (printed[-5:], after)
    assert after == list(range(after[0], after[0] + len(after)))


def raw(api, method, path, body=None):
    """A request the client has no wrapper for, on its session (so it is recorded too)."""
    response = api.session.request(method, api.endpoint + path, json=body, timeout=DEADLINE)
    return response.status_code, (response.json() if response.content else None)


def schema_for(spec, operation, status):
    responses = operation.get("responses", {})
    answer = responses.get(status) or responses.get(str(status)) or responses.get("default")
    return answer.get("schema") if answer else None


def operation_for(spec, method, path):
    """The OpenAPI operation of a concrete path (`/drives/rootfs` matches `/drives/{drive_id}`)."""
    parts = path.rstrip("/").split("/") if path != "/" else [""]
    for template, operations in spec["paths"].items():
        tparts = template.rstrip("/").split("/") if template != "/" else [""]
        if len(tparts) == len(parts) and all(t == p or t.startswith("{") for t, p in zip(tparts, parts)):
            if method.lower() in operations:
                return operations[method.lower()]
    return None


def test_every_exchange_matches_the_openapi_file(firecracker, tmp_path, processes):
    """Both scenarios above, every exchange checked against the file: a request body it
    accepts, or one it rejects that microvm refused too (the tests send some bad ones on
    purpose), and each answer against the schema of its status."""
    path = os.environ.get("FIRECRACKER_OPENAPI") or OPENAPI
    import jsonschema
    import yaml

    spec = yaml.safe_load(Path(path).read_text())
    EXCHANGES.clear()
    test_configure_start_pause_resume(firecracker, tmp_path)
    (tmp_path / "restore").mkdir()
    test_snapshot_then_restore_in_a_new_process(tmp_path / "restore", processes)
    assert EXCHANGES, "the client made no request"

    def problem(instance, schema):
        document = {"definitions": spec["definitions"], **schema}
        try:
            # Swagger 2.0 schemas are JSON Schema draft 4; the file's own schema check
            # (jsonschema.validate's) is skipped: it would run once per exchange.
            jsonschema.Draft4Validator(document).validate(instance)
        except jsonschema.ValidationError as e:
            return e.message
        return None

    def check(instance, schema, what):
        if (message := problem(instance, schema)) is not None:
            pytest.fail(f"{what}: {message}\n{json.dumps(instance)}")

    refused_as_the_file_says = 0
    for method, url, body, status, answer in EXCHANGES:
        operation = operation_for(spec, method, url)
        assert operation is not None, f"{method} {url} is not in the OpenAPI file"
        if body is not None:
            parameter = next(p for p in operation.get("parameters", []) if p.get("in") == "body")
            if (message := problem(body, parameter["schema"])) is not None:
                assert status == 400, f"{method} {url}: the file rejects the body ({message}), microvm answered {status}"
                refused_as_the_file_says += 1
        schema = schema_for(spec, operation, status)
        if status == 204:
            assert answer is None, f"{method} {url}: 204 with a body"
        elif schema is not None:
            check(answer, schema, f"answer {status} to {method} {url}")
    # The vsock with guest_cid 2 (the file's minimum is 3).
    assert refused_as_the_file_says >= 1
