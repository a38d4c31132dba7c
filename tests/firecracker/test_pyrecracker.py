"""The second published Firecracker client, pyrecracker (its `FirecrackerClient`, the class
its `MicroVM` drives Firecracker with), configures, starts, pauses, resumes, snapshots and
restores a tiny guest through microvm's Firecracker front end.

pyrecracker declares Python >= 3.12 but its code runs on Debian 12's 3.11 (nothing in it
needs 3.12), so it is installed with `--ignore-requires-python` (requirements-any-python.txt);
`cargo xtask pytest` does that. Every exchange it makes is checked against Firecracker's OpenAPI
file by conftest.py's `exchanges` fixture, as test_client.py's are."""

import pytest
from requests.exceptions import HTTPError

from fcvm import counts, guest, start, stop

pyrecracker = pytest.importorskip("pyrecracker.client", reason="pyrecracker is not installed "
                                  "(pip install --ignore-requires-python -r requirements-any-python.txt)")
from pyrecracker.client import FirecrackerClient  # noqa: E402
from pyrecracker.client_types import (  # noqa: E402
    VM, ActionType, BootSource, Drive, InstanceActionInfo, MachineConfiguration, SnapshotCreateParams,
    SnapshotLoadParams, SnapshotType, VMState)


def test_configure_start_pause_snapshot_restore(tmp_path, processes, exchanges):
    first = start(tmp_path / "fc1.socket")
    processes.append(first)
    client = FirecrackerClient(str(tmp_path / "fc1.socket"))
    client.put_machine_config(MachineConfiguration(mem_size_mib=32, vcpu_count=1, smt=False))
    client.put_boot_source(BootSource(kernel_image_path=str(guest("counter")), boot_args="console=ttyS0"))
    rootfs = tmp_path / "rootfs.ext4"
    rootfs.write_bytes(bytes(1 << 20))
    client.put_drives(Drive(drive_id="rootfs", is_root_device=True, is_read_only=False,
                            path_on_host=str(rootfs)))
    # A drive whose file does not exist: Firecracker's 400, raised by the client, nothing applied.
    with pytest.raises(HTTPError, match="400"):
        client.put_drives(Drive(drive_id="data", is_root_device=False, path_on_host=str(tmp_path / "none")))
    client.put_actions(InstanceActionInfo(action_type=ActionType.INSTANCE_START))
    running = counts(first, 3)
    assert running == list(range(running[0], running[0] + 3))
    # Configuration that only applies before the start is refused afterwards.
    with pytest.raises(HTTPError, match="400"):
        client.put_boot_source(BootSource(kernel_image_path=str(guest("counter"))))

    client.patch_vm(VM(state=VMState.PAUSED))
    client.patch_vm(VM(state=VMState.RESUMED))
    resumed = counts(first, 2)
    assert resumed[0] > running[-1], (running, resumed)
    client.patch_vm(VM(state=VMState.PAUSED))
    client.put_snapshot_create(SnapshotCreateParams(snapshot_path=str(tmp_path / "state"),
                                                    mem_file_path=str(tmp_path / "mem"),
                                                    snapshot_type=SnapshotType.FULL))
    printed = running + resumed + stop(first)

    # pyrecracker loads with `mem_file_path` (the older spelling Firecracker still takes).
    second = start(tmp_path / "fc2.socket")
    processes.append(second)
    client = FirecrackerClient(str(tmp_path / "fc2.socket"))
    client.put_snapshot_load(SnapshotLoadParams(snapshot_path=str(tmp_path / "state"),
                                                mem_file_path=str(tmp_path / "mem"), resume_vm=True))
    after = counts(second, 3)
    stop(second)
    assert after[0] == printed[-1] + 1, (printed[-5:], after)
    assert after == list(range(after[0], after[0] + 3))
    # pyrecracker's own session is recorded (and so checked at the end): its load too.
    load = [e for e in exchanges if e[1] == "/snapshot/load"]
    assert len(load) == 1 and load[0][2]["mem_file_path"] == str(tmp_path / "mem") and load[0][3] == 204, load
    assert [e[3] for e in exchanges].count(400) == 2, exchanges


def test_load_refused_for_a_missing_snapshot(tmp_path, processes):
    process = start(tmp_path / "fc.socket")
    processes.append(process)
    client = FirecrackerClient(str(tmp_path / "fc.socket"))
    with pytest.raises(HTTPError, match="400"):
        client.put_snapshot_load(SnapshotLoadParams(snapshot_path=str(tmp_path / "no-such"),
                                                    mem_file_path=str(tmp_path / "mem")))
    # Still serving, still not started: a failed load leaves a fresh VMM.
    client.put_machine_config(MachineConfiguration(mem_size_mib=32, vcpu_count=1))
    client.put_boot_source(BootSource(kernel_image_path=str(guest("counter")), boot_args="console=ttyS0"))
    client.put_actions(InstanceActionInfo(action_type=ActionType.INSTANCE_START))
    assert len(counts(process, 2)) == 2
    stop(process)
