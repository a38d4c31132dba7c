"""The query commands' shapes, human-monitor-command, and errors, as QEMU answers them.
Values come from the running process (its threads, its -version output, its arguments),
never from a copy of QEMU's answers."""

import subprocess

import pytest
from qemu.qmp import ExecuteError

from conftest import binary

# The commands the issue lists; query-commands must name each.
COMMANDS = [
    "qmp_capabilities", "query-version", "query-commands", "query-status", "stop", "cont", "quit",
    "system_reset", "query-cpus-fast", "query-name", "query-uuid", "query-kvm", "query-target",
    "query-machines", "query-chardev", "query-block", "human-monitor-command",
]


@pytest.fixture
def vm_qmp(launch, connect):
    vm = launch("-smp", "2", "-name", "vm-under-test", "-uuid", "6B29FC40-CA47-1067-B31D-00DD010662DA")
    return vm, connect(vm.qmp_path)


def test_version_matches_greeting_and_dash_version(kind, vm_qmp):
    vm, qmp = vm_qmp
    version = qmp.cmd("query-version")
    assert set(version) == {"qemu", "package"}
    assert set(version["qemu"]) == {"major", "minor", "micro"}
    assert all(isinstance(v, int) and v >= 0 for v in version["qemu"].values()), version
    assert qmp.qmp.greeting._asdict()["QMP"]["version"] == version
    # `package` names the build: microvm's own version, QEMU's distribution string; both
    # print it in -version.
    package = version["package"].strip()
    assert package, version
    dash_version = subprocess.run([binary(kind), "-version"], capture_output=True, text=True, timeout=15).stdout
    assert package in dash_version, f"{package!r} not in {dash_version!r}"


def test_commands_lists_each_supported_command(vm_qmp):
    _, qmp = vm_qmp
    names = [c["name"] for c in qmp.cmd("query-commands")]
    assert len(names) == len(set(names)), "a command listed twice"
    missing = [c for c in COMMANDS if c not in names]
    assert not missing, f"query-commands lacks {missing}"


def test_unknown_command_is_command_not_found(vm_qmp):
    _, qmp = vm_qmp
    with pytest.raises(ExecuteError) as err:
        qmp.cmd("no-such-command")
    assert err.value.error_class == "CommandNotFound"
    assert str(err.value) == "The command no-such-command has not been found"
    # The connection stays usable.
    assert qmp.cmd("query-status")["running"] is True


def test_cpus_fast_names_real_threads(vm_qmp):
    vm, qmp = vm_qmp
    cpus = qmp.cmd("query-cpus-fast")
    assert [c["cpu-index"] for c in cpus] == [0, 1]
    tasks = vm.threads()
    for c in cpus:
        assert c["thread-id"] in tasks, f"thread-id {c['thread-id']} is not a thread of {vm.pid}: {tasks}"
        assert c["thread-id"] != vm.pid, "a vCPU runs on the main thread"
        assert c["target"] == "x86_64"
        assert isinstance(c["qom-path"], str) and c["qom-path"].startswith("/machine/"), c
        assert {"socket-id", "core-id", "thread-id"} <= set(c["props"]), c
    assert len({c["thread-id"] for c in cpus}) == 2, cpus
    assert len({c["qom-path"] for c in cpus}) == 2, cpus

    info = qmp.hmp("info cpus")
    want = "".join(f"{'*' if c['cpu-index'] == 0 else ' '} CPU #{c['cpu-index']}: thread_id={c['thread-id']}\r\n"
                   for c in cpus)
    assert info == want


def test_name_uuid_kvm_target(vm_qmp):
    _, qmp = vm_qmp
    assert qmp.cmd("query-name") == {"name": "vm-under-test"}
    # -uuid is accepted in upper case and reported in canonical lower case.
    assert qmp.cmd("query-uuid") == {"UUID": "6b29fc40-ca47-1067-b31d-00dd010662da"}
    assert qmp.cmd("query-kvm") == {"enabled": True, "present": True}
    assert qmp.cmd("query-target") == {"arch": "x86_64"}


def test_name_and_uuid_defaults(launch, connect):
    vm = launch()
    qmp = connect(vm.qmp_path)
    assert qmp.cmd("query-name") == {}
    assert qmp.cmd("query-uuid") == {"UUID": "00000000-0000-0000-0000-000000000000"}


def test_machines_chardevs_blocks(vm_qmp):
    vm, qmp = vm_qmp
    microvm = [m for m in qmp.cmd("query-machines") if m["name"] == "microvm"]
    assert len(microvm) == 1, "query-machines has no single 'microvm'"
    assert isinstance(microvm[0]["cpu-max"], int) and microvm[0]["cpu-max"] >= 2
    assert isinstance(microvm[0]["hotpluggable-cpus"], bool)

    chardevs = qmp.cmd("query-chardev")
    for c in chardevs:
        assert set(c) >= {"label", "filename", "frontend-open"}, c
    filenames = [c["filename"] for c in chardevs]
    assert any(f.startswith(f"unix:{vm.qmp_path}") for f in filenames), filenames
    assert "stdio" in filenames, f"no chardev for -serial stdio: {filenames}"
    assert len({c["label"] for c in chardevs}) == len(chardevs), "labels are not unique"

    assert qmp.cmd("query-block") == []  # no -drive


def test_hmp_info_status_version_mtree(vm_qmp):
    _, qmp = vm_qmp
    assert qmp.hmp("info status") == "VM status: running\r\n"
    v = qmp.cmd("query-version")
    # QEMU prints the version and the package with nothing between them.
    assert qmp.hmp("info version") == "{major}.{minor}.{micro}".format(**v["qemu"]) + v["package"] + "\r\n"
    mtree = qmp.hmp("info mtree")
    assert "address-space: memory" in mtree and "ram" in mtree, mtree[:500]
    # An unknown HMP command is not a QMP error: the text says so.
    assert qmp.hmp("no-such-hmp") == "unknown command: 'no-such-hmp'\r\n"


def test_hmp_stop_cont_quit(vm_qmp):
    vm, qmp = vm_qmp
    assert qmp.hmp("stop") == ""
    qmp.event("STOP")
    assert qmp.cmd("query-status")["status"] == "paused"
    assert qmp.hmp("info status") == "VM status: paused\r\n"
    assert qmp.hmp("cont") == ""
    qmp.event("RESUME")
    assert qmp.cmd("query-status")["status"] == "running"
    qmp.hmp("quit")
    assert qmp.event("SHUTDOWN")["data"] == {"guest": False, "reason": "host-qmp-quit"}
    assert vm.wait_exit() == 0


def test_debug_threads_names_vcpu_threads_like_qemu(launch, connect):
    vm = launch("-smp", "2", "-name", "named,debug-threads=on")
    qmp = connect(vm.qmp_path)
    assert qmp.cmd("query-name") == {"name": "named"}
    for c in qmp.cmd("query-cpus-fast"):
        with open(f"/proc/{vm.pid}/task/{c['thread-id']}/comm") as f:
            assert f.read().strip() == f"CPU {c['cpu-index']}/KVM"
