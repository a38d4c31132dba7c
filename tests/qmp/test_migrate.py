"""Snapshots through QEMU's migration commands, driven by qemu.qmp, next to QEMU itself.

QEMU 7.2 (Debian 12) has no `file:` migration (8.2 added it), so QEMU saves with
`exec:cat > FILE` and restores with `-incoming exec:cat FILE`; microvm migrates only to
files (`file:PATH`, `-incoming file:PATH`). Everything else is compared: the source ends
in `postmigrate` and `cont` resumes it, `query-migrate` reports `completed`, the
MIGRATION events (with the `events` capability) end with `completed`, and the restored
counter guest goes on from the next number."""

import time

import pytest
from qemu.qmp import ExecuteError

from vmm import DEADLINE, counter_values


def uris(kind, path):
    """(the migrate URI, the -incoming URI) each VMM takes for a file."""
    if kind == "microvm":
        return f"file:{path}", f"file:{path}"
    return f"exec:cat > {path}", f"exec:cat {path}"


def wait_lines(vm, n):
    return counter_values(vm.serial.wait_for(lambda d: len(counter_values(d)) >= n, what=f"{n} counter lines"))


def wait_completed(qmp):
    """query-migrate until the migration ends (QEMU's runs in a thread)."""
    end = time.monotonic() + DEADLINE
    while True:
        info = qmp.cmd("query-migrate")
        if info.get("status") in ("completed", "failed") or time.monotonic() > end:
            return info
        time.sleep(0.02)


def test_stop_migrate_quit_then_incoming_counts_on(kind, launch, connect, workdir):
    vm = launch()
    qmp = connect(vm.qmp_path)
    wait_lines(vm, 3)
    assert qmp.cmd("query-migrate") == {}, "no migration yet"
    qmp.cmd("migrate-set-capabilities", capabilities=[{"capability": "events", "state": True}])
    caps = {c["capability"]: c["state"] for c in qmp.cmd("query-migrate-capabilities")}
    assert caps["events"] is True
    qmp.cmd("stop")
    qmp.event("STOP")
    out, incoming = uris(kind, workdir / "vm.snap")
    qmp.cmd("migrate", uri=out)
    info = wait_completed(qmp)
    assert info["status"] == "completed", info
    # QEMU counts its ROMs' RAM too; microvm's guest has only its 128 MiB.
    assert info["ram"]["total"] == 128 << 20 if kind == "microvm" else info["ram"]["total"] >= 128 << 20, info
    assert qmp.event("MIGRATION")["data"]["status"] in ("setup", "active", "completed")
    assert qmp.cmd("query-status")["status"] == "postmigrate"
    saved = counter_values(vm.serial.data())
    qmp.cmd("quit")
    assert vm.wait_exit() == 0
    if kind == "qemu":
        # QEMU 7.2's restored counter guest stays silent after `cont` on this host's
        # emulated /dev/kvm (query-status says running): only the source side compares.
        return

    clone = launch("-incoming", incoming)
    qmp2 = connect(clone.qmp_path)
    # QEMU leaves a clone of a stopped source paused (the runstate travels with it).
    qmp2.cmd("cont")
    values = wait_lines(clone, 3)
    assert qmp2.cmd("query-status")["status"] == "running"
    # The clone prints from where the source stopped: its first complete number follows the
    # source's last (a number cut in half by the stop is finished by the clone).
    joined = counter_values(vm.serial.data() + clone.serial.data())
    assert joined == list(range(1, len(joined) + 1)), f"went back or skipped: ...{joined[-20:]}"
    assert values[-1] > saved[-1]


def test_migrate_of_a_running_vm_stops_it_and_cont_resumes(kind, launch, connect, workdir):
    vm = launch()
    qmp = connect(vm.qmp_path)
    wait_lines(vm, 2)
    out, _ = uris(kind, workdir / "run.snap")
    qmp.cmd("migrate", uri=out)
    assert wait_completed(qmp)["status"] == "completed"
    qmp.event("STOP")
    assert qmp.cmd("query-status")["status"] == "postmigrate"
    before = len(counter_values(vm.serial.data()))
    qmp.cmd("cont")
    qmp.event("RESUME")
    after = wait_lines(vm, before + 3)
    assert after == list(range(1, len(after) + 1))


def test_microvm_refuses_what_it_cannot_do_in_one_error(kind, launch, connect):
    if kind != "microvm":
        pytest.skip("microvm's own refusals (QEMU migrates over tcp: and has postcopy)")
    vm = launch()
    qmp = connect(vm.qmp_path)
    with pytest.raises(ExecuteError) as e:
        qmp.cmd("migrate", uri="tcp:127.0.0.1:4444")
    assert "file:PATH" in str(e.value)
    with pytest.raises(ExecuteError) as e:
        qmp.cmd("migrate-set-capabilities", capabilities=[{"capability": "postcopy-ram", "state": True}])
    assert "postcopy-ram" in str(e.value)
    assert qmp.cmd("query-status")["status"] == "running"
