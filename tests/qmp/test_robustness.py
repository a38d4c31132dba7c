"""Clients that come and go, and clients that send garbage, must cost the VMM nothing:
the same open files afterwards, and a fresh client served as before (acceptance 2)."""

import os
import random
import socket
import threading

from client import RawClient
from vmm import wait_until

CYCLES = 200


def open_fds(pid) -> dict:
    """fd number -> what it points to, for a readable failure message."""
    fds = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            fds[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            pass  # closed while listing
    return fds


def assert_fds_back_to(vm, before: dict):
    """The VMM closes a finished client's socket asynchronously, once it has read what
    is buffered: wait for it, then compare, naming the descriptors that differ."""
    try:
        wait_until(lambda: len(open_fds(vm.pid)) == len(before), what="fd count back to its baseline")
    except AssertionError:
        after = open_fds(vm.pid)
        extra = {fd: t for fd, t in after.items() if before.get(fd) != t}
        gone = {fd: t for fd, t in before.items() if after.get(fd) != t}
        raise AssertionError(f"{len(before)} fds before, {len(after)} after; new: {extra}; gone: {gone}") from None


def baseline(vm) -> dict:
    """The fds of a VMM that runs its guest and has had no client yet."""
    vm.serial.wait_for(lambda d: d.count(b"\n") >= 2, what="counter output")
    return open_fds(vm.pid)


def test_200_connect_disconnect_cycles_leak_nothing(launch, connect):
    vm = launch()
    before = baseline(vm)
    for i in range(CYCLES):
        if i % 2 == 0:
            # A well-behaved client: greeting, negotiation, one command, goodbye.
            c = connect(vm.qmp_path)
            c.cmd("query-status")
            c.close()
        else:
            # One that hangs up at once, maybe before the greeting is even written.
            s = socket.socket(socket.AF_UNIX)
            s.connect(str(vm.qmp_path))
            s.close()
    assert_fds_back_to(vm, before)
    assert connect(vm.qmp_path).cmd("query-status")["status"] == "running"
    assert vm.alive()


def drain(sock):
    """Reads and drops whatever the VMM answers until it closes or we do, so that a VMM
    that writes error replies never blocks on a full socket buffer."""
    def run():
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def send_garbage_then_close(path, data: bytes, negotiate: bool):
    raw = RawClient(str(path))
    if negotiate:
        raw.negotiate()
    reader = drain(raw.sock)
    try:
        raw.send(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the VMM may hang up on garbage: allowed, as long as it lives on
    raw.sock.shutdown(socket.SHUT_RDWR)
    raw.close()
    reader.join(5)


MALFORMED = b"".join(line + b"\n" for line in [
    b'{"execute": }', b"[1, 2", b"}}}", b'"just a string"', b'{"execute": 5}', b"{'single': 'quotes'}",
    b'{"execute": "query-status", "arguments": []}', b'{"execute": "query-status", "unknown-key": 1}',
    b"\xff\xfe\x00\x01 not utf-8", b"[" * 2000 + b"]" * 2000, b"{" * 5000,
])


def test_garbage_sending_clients_leak_nothing(kind, launch, connect):
    vm = launch()
    before = baseline(vm)
    rng = random.Random(2026)
    send_garbage_then_close(vm.qmp_path, rng.randbytes(64 * 1024), negotiate=False)
    send_garbage_then_close(vm.qmp_path, rng.randbytes(64 * 1024), negotiate=True)
    send_garbage_then_close(vm.qmp_path, MALFORMED, negotiate=True)
    # One huge line: a command with a huge string argument. A VMM may refuse the line and
    # hang up; it must not keep the memory or the socket. 10 MiB for microvm; QEMU reads
    # its monitor one byte per main-loop turn (~120 KiB/s here), so it gets 256 KiB.
    size = (10 << 20) if kind == "microvm" else (256 << 10)
    huge = b'{"execute": "query-status", "arguments": {"pad": "' + b"a" * size + b'"}}\n'
    send_garbage_then_close(vm.qmp_path, huge, negotiate=True)
    assert vm.alive(), vm.stderr.text()
    assert_fds_back_to(vm, before)
    qmp = connect(vm.qmp_path)
    assert qmp.cmd("query-status")["status"] == "running"


def test_malformed_json_gets_an_error_and_the_connection_goes_on(launch):
    vm = launch()
    raw = RawClient(str(vm.qmp_path))
    raw.negotiate()
    raw.send(b'{"execute": }\n')
    reply = raw.recv_reply()
    assert reply["error"]["class"] == "GenericError", reply
    raw.send(b'{"execute": "query-status", "id": "after"}\n')
    reply = raw.recv_reply()
    assert (reply.get("id"), reply["return"]["status"]) == ("after", "running"), reply
