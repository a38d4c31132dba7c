"""The balloon's QMP side against QEMU: query-balloon and balloon without a balloon, and
with one that no guest driver has touched (the tiny guests have none; the guest side is
tested with Linux in the rig and with the driver-side harness in crates/devices)."""

import pytest
from qemu.qmp import ExecuteError

MIB = 1 << 20
RAM = 128 * MIB  # COMMON_ARGS' -m


def test_no_balloon_is_device_not_active(launch, connect):
    vm = launch()
    qmp = connect(vm.qmp_path)
    for command, args in [("query-balloon", {}), ("balloon", {"value": 64 * MIB})]:
        with pytest.raises(ExecuteError) as err:
            qmp.cmd(command, **args)
        assert err.value.error_class == "DeviceNotActive", command
        assert str(err.value) == "No balloon device has been activated"


def test_balloon_target_and_report_before_the_guest_answers(launch, connect):
    vm = launch("-device", "virtio-balloon-device,id=balloon0")
    qmp = connect(vm.qmp_path)
    # No driver has inflated anything: the guest has all its RAM.
    assert qmp.cmd("query-balloon") == {"actual": RAM}
    assert qmp.cmd("balloon", value=64 * MIB) == {}
    assert qmp.cmd("query-balloon") == {"actual": RAM}, "only the guest moves 'actual'"
    with pytest.raises(ExecuteError) as err:
        qmp.cmd("balloon", value=0)
    assert err.value.error_class == "GenericError"
    with pytest.raises(ExecuteError) as err:
        qmp.cmd("balloon")
    assert str(err.value) == "Parameter 'value' is missing"
    # No statistics yet: every one reads (u64)-1 as in QEMU, last-update 0.
    stats = qmp.cmd("qom-get", path="/machine/peripheral/balloon0", property="guest-stats")
    assert stats["last-update"] == 0
    assert stats["stats"]["stat-free-memory"] == 2**64 - 1
    assert {"stat-swap-in", "stat-total-memory", "stat-available-memory"} <= set(stats["stats"])
