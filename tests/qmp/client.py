"""QMP clients for the tests: qemu.qmp's own QMPClient driven synchronously with a
deadline on every wait, and a raw socket for what a well-behaved client never sends."""

import asyncio
import json
import socket
import time

from qemu.qmp import QMPClient

from vmm import DEADLINE

# One event loop for every client of the process: while a test waits on one client, the
# reader tasks of the others keep draining their sockets, as in a real asyncio program.
_LOOP = asyncio.new_event_loop()
_OPEN = []


def run(awaitable, timeout=DEADLINE):
    return _LOOP.run_until_complete(asyncio.wait_for(awaitable, timeout))


class Client:
    def __init__(self, name="pytest"):
        self.qmp = QMPClient(name)
        _OPEN.append(self)

    def connect(self, address, timeout=DEADLINE):
        """Connects (path, (host, port) or a connected socket) and negotiates; returns
        the greeting as a dict."""
        run(self.qmp.connect(address), timeout)
        return self.qmp.greeting._asdict()  # as qemu.qmp.legacy does

    def listen(self, address):
        """Listens at `address`, for a VMM whose monitor connects (server=off)."""
        run(self.qmp.start_server(address))

    def accept(self, timeout=DEADLINE):
        """Waits for the VMM to connect to `listen`'s socket, and negotiates."""
        run(self.qmp.accept(), timeout)
        return self.qmp.greeting._asdict()

    def cmd(self, name, timeout=DEADLINE, **args):
        """The command's `return` value; an `error` reply raises qemu.qmp's ExecuteError."""
        return run(self.qmp.execute(name, args or None), timeout)

    def hmp(self, line, timeout=DEADLINE) -> str:
        return self.cmd("human-monitor-command", timeout, **{"command-line": line})

    def event(self, name, timeout=DEADLINE) -> dict:
        """The next event called `name`; events before it are dropped."""
        end = time.monotonic() + timeout
        seen = []
        while True:
            left = end - time.monotonic()
            try:
                ev = dict(run(self.qmp.events.get(), max(left, 0)))
            except (asyncio.TimeoutError, TimeoutError):
                raise AssertionError(f"no {name} event within {timeout} s; saw {seen}") from None
            if ev["event"] == name:
                return ev
            seen.append(ev["event"])

    def pending_events(self) -> list:
        """Events received so far and not taken yet."""
        run(asyncio.sleep(0.01))  # lets the reader task parse what has arrived
        return [dict(e) for e in self.qmp.events.clear()]

    def close(self):
        if self in _OPEN:
            _OPEN.remove(self)
        try:
            run(self.qmp.disconnect())
        except Exception:  # the peer may be gone (quit, kill): nothing left to close
            pass


def close_all():
    for c in list(_OPEN):
        c.close()


class RawClient:
    """A plain stream socket speaking QMP's JSON by hand, for bytes no library sends."""

    def __init__(self, address, timeout=DEADLINE):
        if isinstance(address, socket.socket):
            self.sock = address
        else:
            family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
            end = time.monotonic() + timeout
            while True:
                self.sock = socket.socket(family, socket.SOCK_STREAM)
                self.sock.settimeout(timeout)
                try:
                    self.sock.connect(address)
                    break
                except ConnectionRefusedError:
                    # Bound but not listening yet: see conftest's connect().
                    self.sock.close()
                    if time.monotonic() > end:
                        raise
                    time.sleep(0.01)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.texts = []  # each JSON object's text as it came, for the pretty=on test

    def send(self, data: bytes):
        self.sock.sendall(data)

    def send_json(self, obj):
        self.send(json.dumps(obj).encode() + b"\n")

    def recv(self, timeout=DEADLINE) -> dict:
        """The next JSON object (it may span lines, as with pretty=on)."""
        end = time.monotonic() + timeout
        decoder = json.JSONDecoder()
        while True:
            text = self.buf.decode(errors="replace").lstrip()
            if text:
                try:
                    obj, used = decoder.raw_decode(text)
                    self.texts.append(text[:used])
                    self.buf = text[used:].encode()
                    return obj
                except json.JSONDecodeError:
                    pass  # incomplete: read more
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no complete JSON within {timeout} s; have {self.buf[-300:]!r}")
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(f"peer closed; unparsed {self.buf[-300:]!r}")
            self.buf += data

    def recv_reply(self, timeout=DEADLINE) -> dict:
        """The next reply (`return` or `error`), skipping events."""
        end = time.monotonic() + timeout
        while True:
            msg = self.recv(max(end - time.monotonic(), 0.001))
            if "event" not in msg:
                return msg

    def negotiate(self) -> dict:
        greeting = self.recv()
        self.send_json({"execute": "qmp_capabilities"})
        assert self.recv_reply() == {"return": {}}
        return greeting

    def close(self):
        self.sock.close()
