"""Run state through QMP: -S, stop, cont, quit, resets, signals (acceptance point 2).

The counter guest prints `0000000001`, `0000000002`, ... one line every ~5 ms on COM1:
output that grows means the vCPU runs, and the numbers must never go back nor skip."""

import signal
import time

import pytest

from conftest import program_name
from vmm import counter_values

# The bound: once `stop` has answered, the guest prints nothing after this.
STOP_BOUND = 0.050
# How long the output must then stay unchanged.
QUIET_WINDOW = 0.300


def wait_lines(vm, n, what="counter lines"):
    """Waits until the counter guest has printed `n` complete lines; returns the values."""
    return counter_values(vm.serial.wait_for(lambda d: len(counter_values(d)) >= n, what=what))


def assert_counts_from_one(values):
    assert values == list(range(1, len(values) + 1)), f"counter went back or skipped: ...{values[-20:]}"


def assert_timestamp_recent(event):
    ts = event["timestamp"]
    assert set(ts) == {"seconds", "microseconds"}, event
    assert 0 <= ts["microseconds"] < 1_000_000, event
    assert abs(ts["seconds"] + ts["microseconds"] / 1e6 - time.time()) < 60, event


def test_stop_halts_output_within_50_ms_and_cont_resumes(launch, connect):
    vm = launch()
    qmp = connect(vm.qmp_path)
    wait_lines(vm, 5)
    assert qmp.cmd("query-status")["status"] == "running"

    qmp.cmd("stop")
    replied = time.monotonic()
    time.sleep(STOP_BOUND)
    after_bound = len(vm.serial.data())
    time.sleep(QUIET_WINDOW)
    late = vm.serial.data()[after_bound:]
    assert late == b"", f"{len(late)} bytes printed more than {STOP_BOUND * 1000:.0f} ms after stop's reply"
    assert time.monotonic() - replied >= STOP_BOUND + QUIET_WINDOW

    stop = qmp.event("STOP")
    assert_timestamp_recent(stop)
    status = qmp.cmd("query-status")
    assert (status["status"], status["running"]) == ("paused", False)
    stopped_at = counter_values(vm.serial.data())

    qmp.cmd("cont")
    assert_timestamp_recent(qmp.event("RESUME"))
    assert qmp.cmd("query-status")["status"] == "running"
    values = wait_lines(vm, len(stopped_at) + 5, "output after cont")
    assert_counts_from_one(values)


def test_start_paused_prints_nothing_until_cont(launch, connect):
    vm = launch("-S")
    qmp = connect(vm.qmp_path)
    status = qmp.cmd("query-status")
    assert (status["status"], status["running"]) == ("prelaunch", False)
    time.sleep(QUIET_WINDOW)
    assert vm.serial.data() == b"", "the guest ran before cont"
    assert qmp.cmd("query-status")["status"] == "prelaunch"

    qmp.cmd("cont")
    qmp.event("RESUME")
    assert_counts_from_one(wait_lines(vm, 5, "output after cont"))
    assert qmp.cmd("query-status")["status"] == "running"


def test_stop_and_cont_are_idempotent(launch, connect):
    # QEMU answers `stop` on a paused VM and `cont` on a running one with success.
    vm = launch()
    qmp = connect(vm.qmp_path)
    wait_lines(vm, 1)
    assert qmp.cmd("cont") == {}
    qmp.cmd("stop")
    assert qmp.cmd("stop") == {}
    assert qmp.cmd("query-status")["status"] == "paused"
    qmp.cmd("cont")
    assert qmp.cmd("query-status")["status"] == "running"


def test_quit_sends_shutdown_then_exits_0(launch, connect):
    vm = launch()
    qmp = connect(vm.qmp_path)
    wait_lines(vm, 3)
    assert qmp.cmd("quit") == {}
    shutdown = qmp.event("SHUTDOWN")
    assert shutdown["data"] == {"guest": False, "reason": "host-qmp-quit"}
    assert_timestamp_recent(shutdown)
    assert vm.wait_exit() == 0
    assert not vm.qmp_path.exists(), "the monitor socket outlived the VMM"


def test_quit_while_paused(launch, connect):
    vm = launch("-S")
    qmp = connect(vm.qmp_path)
    qmp.cmd("quit")
    assert qmp.event("SHUTDOWN")["data"]["reason"] == "host-qmp-quit"
    assert vm.wait_exit() == 0


def test_guest_triple_fault_is_a_guest_reset(launch, connect):
    # -S so that the client is connected before the guest resets.
    vm = launch("-S", guest="late-triple-fault")
    qmp = connect(vm.qmp_path)
    qmp.cmd("cont")
    shutdown = qmp.event("SHUTDOWN")
    assert shutdown["data"] == {"guest": True, "reason": "guest-reset"}
    assert vm.wait_exit() == 0
    assert vm.serial.data() == b"RESETTING\n"


def test_guest_i8042_reset_is_a_guest_reset(kind, launch, connect):
    if kind == "qemu":
        pytest.skip("QEMU's -M microvm has no i8042 (microvm has one for reboot=k guests)")
    vm = launch("-S", guest="i8042-reset")
    qmp = connect(vm.qmp_path)
    qmp.cmd("cont")
    assert qmp.event("SHUTDOWN")["data"] == {"guest": True, "reason": "guest-reset"}
    assert vm.wait_exit() == 0


def test_system_reset_ends_the_vmm_like_no_reboot(launch, connect):
    vm = launch()
    qmp = connect(vm.qmp_path)
    wait_lines(vm, 2)
    assert qmp.cmd("system_reset") == {}
    assert qmp.event("SHUTDOWN")["data"] == {"guest": False, "reason": "host-qmp-system-reset"}
    assert vm.wait_exit() == 0


def test_sigterm_is_a_host_signal_shutdown(kind, launch, connect):
    vm = launch()
    qmp = connect(vm.qmp_path)
    wait_lines(vm, 2)
    vm.proc.send_signal(signal.SIGTERM)
    assert qmp.event("SHUTDOWN")["data"] == {"guest": False, "reason": "host-signal"}
    # A known difference: QEMU exits 0 on SIGTERM, microvm 128+15 as a killed shell job
    # would (docs/ARCHITECTURE.md, "every way the VM ends").
    assert vm.wait_exit() == (0 if kind == "qemu" else 128 + signal.SIGTERM)
    lines = vm.stderr.text().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{program_name(kind)}: terminating on signal 15"), lines
