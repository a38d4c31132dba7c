"""A published Firecracker client (hysn-firecracker-python's `Api`) configures, starts,
pauses, resumes, snapshots and restores a tiny guest through microvm's Firecracker front end; every request and
answer is validated against Firecracker's OpenAPI file (tests/firecracker/openapi/, or the copy
FIRECRACKER_OPENAPI names) by conftest.py's `exchanges` fixture, with fcvm.py's check."""

import json
import os
import signal
import subprocess
import time

import pytest

from fcvm import DEADLINE, check_exchange, counts, guest, microvm_bin, openapi, start, stop


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
    yield api, process
    api.close()
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    process.wait(timeout=DEADLINE)
    errors = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    print(errors)
    assert "panicked" not in errors and "seccomp" not in errors, errors


def test_configure_start_pause_resume(firecracker, tmp_path, exchanges):
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
    # The file's minimum is 3: a body it rejects, refused as it must be.
    assert exchanges[-1][2] == {"guest_cid": 2, "uds_path": str(tmp_path / "v.sock")}
    assert check_exchange(openapi(), *exchanges[-1])
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


def test_the_exchange_check_refuses_what_the_file_refuses():
    """fcvm.check_exchange, which every test's exchanges go through, fails on a bad body that
    was accepted, a wrong answer, 204 with a body, an undocumented path or a silent 400."""
    spec = openapi()
    vsock = {"guest_cid": 2, "uds_path": "/v.sock"}
    fault = {"fault_message": "reserved"}
    assert check_exchange(spec, "PUT", "/vsock", vsock, 400, fault) is True
    assert check_exchange(spec, "PUT", "/vsock", {**vsock, "guest_cid": 3}, 204, None) is False
    info = {"app_name": "Firecracker", "id": "x", "state": "Running", "vmm_version": "1"}
    assert check_exchange(spec, "GET", "/", None, 200, info) is False
    wrong = [
        (("PUT", "/vsock", vsock, 204, None), "the file rejects the body"),
        (("PUT", "/actions", None, 204, None), "requires a body"),
        (("PUT", "/actions", {"action_type": "Reboot"}, 204, None), "the file rejects the body"),
        (("GET", "/", None, 200, {**info, "state": "Booting"}), "the answer"),
        (("GET", "/", None, 200, {"state": "Running"}), "the answer"),
        (("PUT", "/vsock", {**vsock, "guest_cid": 3}, 204, {}), "204 with a body"),
        (("PUT", "/vsock", {**vsock, "guest_cid": 3}, 400, {}), "no fault_message"),
        (("GET", "/nowhere", None, 400, fault), "not in the OpenAPI file"),
    ]
    for exchange, why in wrong:
        with pytest.raises(AssertionError, match=why):
            check_exchange(spec, *exchange)
