"""The ways to set up a QMP monitor, several monitors and clients, and the protocol
details a client relies on (greeting, negotiation, id echo, pretty printing)."""

import socket
import time

import pytest

from client import Client, RawClient
from vmm import wait_for_socket


def free_tcp_port() -> int:
    # Another process may take the port between close() and the VMM's bind(); on a test
    # machine that is rare, and the failure would say so (bind error on stderr).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_works(qmp: Client):
    status = qmp.cmd("query-status")
    assert status["status"] in ("running", "prelaunch", "paused"), status


def test_greeting_and_negotiation(launch):
    vm = launch()
    raw = RawClient(str(vm.qmp_path))
    greeting = raw.recv()
    assert set(greeting) == {"QMP"} and set(greeting["QMP"]) == {"version", "capabilities"}, greeting
    assert isinstance(greeting["QMP"]["capabilities"], list)
    # Before qmp_capabilities, every other command is refused with CommandNotFound.
    raw.send_json({"execute": "query-status"})
    reply = raw.recv_reply()
    assert reply["error"]["class"] == "CommandNotFound", reply
    raw.send_json({"execute": "qmp_capabilities"})
    assert raw.recv_reply() == {"return": {}}
    raw.send_json({"execute": "query-status"})
    assert raw.recv_reply()["return"]["status"] == "running"


@pytest.mark.parametrize("msg_id", ["plain-string", 42, {"x": [1, "two", None]}])
def test_reply_echoes_any_json_id(launch, msg_id):
    vm = launch()
    raw = RawClient(str(vm.qmp_path))
    raw.negotiate()
    raw.send_json({"execute": "query-status", "id": msg_id})
    reply = raw.recv_reply()
    assert reply["id"] == msg_id, reply
    raw.send_json({"execute": "no-such-command", "id": msg_id})
    reply = raw.recv_reply()
    assert (reply["id"], reply["error"]["class"]) == (msg_id, "CommandNotFound"), reply


def test_two_qmp_monitors_both_get_events(launch, connect, workdir):
    second = workdir / "second.sock"
    vm = launch("-qmp", f"unix:{second},server=on,wait=off")
    wait_for_socket(second, vm)
    a, b = connect(vm.qmp_path), connect(second)
    a.cmd("stop")
    assert a.event("STOP") and b.event("STOP")
    assert b.cmd("query-status")["status"] == "paused"
    b.cmd("cont")
    assert a.event("RESUME") and b.event("RESUME")
    a.cmd("quit")
    assert b.event("SHUTDOWN")["data"]["reason"] == "host-qmp-quit"
    assert vm.wait_exit() == 0


def test_second_client_on_a_busy_monitor(kind, launch, connect):
    vm = launch()
    first = connect(vm.qmp_path)
    second = RawClient(str(vm.qmp_path))
    if kind == "qemu":
        # QEMU's socket chardev serves one client at a time: the second one is accepted by
        # the kernel's backlog but greeted only once the first has gone.
        with pytest.raises((socket.timeout, TimeoutError)):
            second.sock.settimeout(0.5)
            second.sock.recv(1)
        assert_works(first)
        first.close()
        assert "QMP" in second.recv()
    else:
        # A known difference: microvm serves up to 8 clients of one monitor at once (a
        # supervisor and a debugging human can share it; crates/vmm/src/monitor/mod.rs),
        # each greeted at once and each sent the events.
        assert "QMP" in second.negotiate()
        first.cmd("stop")
        assert first.event("STOP")
        while second.recv().get("event") != "STOP":  # each recv has its deadline
            pass
        second.send_json({"execute": "query-status"})
        assert second.recv_reply()["return"]["status"] == "paused"


def test_monitor_refuses_a_ninth_client(kind, launch, connect):
    if kind == "qemu":
        pytest.skip("QEMU serves one client at a time and queues the next ones")
    vm = launch()
    clients = [connect(vm.qmp_path) for _ in range(8)]
    ninth = RawClient(str(vm.qmp_path))
    # Closed at once, without a greeting; the eight go on.
    with pytest.raises(EOFError):
        ninth.recv()
    assert all(c.cmd("query-status")["status"] == "running" for c in clients)
    clients[0].close()
    assert_works(connect(vm.qmp_path))


def test_reconnect_after_disconnect_keeps_the_vm_state(launch, connect):
    vm = launch()
    first = connect(vm.qmp_path)
    first.cmd("stop")
    first.close()
    again = connect(vm.qmp_path)
    assert again.cmd("query-status")["status"] == "paused"
    again.cmd("cont")
    again.close()
    assert connect(vm.qmp_path).cmd("query-status")["status"] == "running"


def test_legacy_server_nowait_syntax(launch, connect, workdir):
    path = workdir / "legacy.sock"
    vm = launch("-qmp", f"unix:{path},server,nowait", qmp=False)
    wait_for_socket(path, vm)
    assert_works(connect(path))


def test_qmp_over_tcp(launch, connect):
    port = free_tcp_port()
    launch("-qmp", f"tcp:127.0.0.1:{port},server=on,wait=off", qmp=False)
    # No socket file to wait for: connect() retries until the VMM listens.
    assert_works(connect(("127.0.0.1", port)))


def test_chardev_socket_path_with_mon(launch, connect, workdir):
    path = workdir / "chardev.sock"
    vm = launch("-chardev", f"socket,id=qmp0,path={path},server=on,wait=off", "-mon", "chardev=qmp0,mode=control",
                qmp=False)
    wait_for_socket(path, vm)
    qmp = connect(path)
    assert_works(qmp)
    labels = [c["label"] for c in qmp.cmd("query-chardev")]
    assert "qmp0" in labels, labels


def test_chardev_inherited_fd_like_the_python_harness(launch, connect):
    # QEMU's Python harness (qemu.machine) passes one end of a socketpair this way.
    ours, theirs = socket.socketpair()
    vm = launch("-chardev", f"socket,id=mon,fd={theirs.fileno()}", "-mon", "chardev=mon,mode=control",
                qmp=False, pass_fds=[theirs.fileno()])
    theirs.close()
    qmp = connect(ours)
    assert_works(qmp)
    qmp.cmd("quit")
    assert vm.wait_exit() == 0


def test_qmp_on_stdio(launch, connect):
    # stdin and stdout are one end of a socketpair, so that qemu.qmp can talk over it.
    ours, theirs = socket.socketpair()
    vm = launch("-qmp", "stdio", serial="none", qmp=False, stdin=theirs, stdout=theirs)
    theirs.close()
    qmp = connect(ours)
    qmp.cmd("stop")
    qmp.event("STOP")
    assert qmp.cmd("query-status")["status"] == "paused"
    qmp.cmd("quit")
    assert vm.wait_exit() == 0


def test_pretty_output(launch, workdir):
    path = workdir / "pretty.sock"
    vm = launch("-chardev", f"socket,id=p,path={path},server=on,wait=off", "-mon", "chardev=p,mode=control,pretty=on",
                qmp=False)
    wait_for_socket(path, vm)
    raw = RawClient(str(path))
    raw.negotiate()
    raw.send_json({"execute": "query-status"})
    assert raw.recv_reply()["return"]["status"] == "running"
    for text in raw.texts:
        # Indented over several lines, four spaces a level, as QEMU prints it.
        assert "\n" in text.strip() and "\n    \"" in text, text


def test_monitor_connecting_to_a_listening_client(launch, workdir):
    # server=off: the VMM connects to the client, as older qemu.machine harnesses do.
    path = workdir / "listener.sock"
    qmp = Client()
    qmp.listen(str(path))
    vm = launch("-chardev", f"socket,id=mon,path={path}", "-mon", "chardev=mon,mode=control", qmp=False)
    qmp.accept()
    assert_works(qmp)
    qmp.cmd("quit")
    assert vm.wait_exit() == 0


def test_wait_on_holds_the_guest_until_a_client_connects(launch, connect, workdir):
    # wait=on: QEMU blocks before starting the VM until the first client connects.
    path = workdir / "waiting.sock"
    vm = launch("-qmp", f"unix:{path},server=on,wait=on", qmp=False)
    wait_for_socket(path, vm)
    time.sleep(0.3)
    assert vm.serial.data() == b"", "the guest ran before any client connected"
    qmp = connect(path)
    vm.serial.wait_for(lambda d: d.count(b"\n") >= 3, what="counter output once a client connected")
    assert qmp.cmd("query-status")["status"] == "running"
