"""Starting a VMM (microvm or QEMU's -M microvm) as a child process, capturing its
serial console and stderr as they arrive, and always killing and reaping it."""

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

# How long anything that should happen "at once" may take: generous, because this host's
# /dev/kvm emulates the guest and two cores are shared by several builds.
DEADLINE = 15.0

# The same arguments for both VMMs, as a drop-in must take QEMU's command line. The
# machine options turn off what microvm lacks; `-cpu host,-arch-capabilities` because
# QEMU 7.2 fails on this host's emulated /dev/kvm without (see xtask/src/bench/local.rs).
COMMON_ARGS = [
    "-M", "microvm,x-option-roms=off,rtc=off,acpi=off",
    "-enable-kvm", "-cpu", "host,-arch-capabilities",
    "-m", "128", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
]


class Capture:
    """Everything a pipe delivers, with the monotonic time each chunk arrived, read by a
    thread so that the child never blocks on a full pipe."""

    def __init__(self, pipe):
        self._pipe = pipe
        self._chunks = []  # (time.monotonic(), bytes)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.closed = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        fd = self._pipe.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            with self._lock:
                if not data:
                    self.closed = True
                else:
                    self._chunks.append((time.monotonic(), data))
                self._changed.notify_all()
            if not data:
                return

    def data(self) -> bytes:
        with self._lock:
            return b"".join(d for _, d in self._chunks)

    def data_after(self, t: float) -> bytes:
        """What arrived after monotonic time `t`."""
        with self._lock:
            return b"".join(d for at, d in self._chunks if at > t)

    def text(self) -> str:
        return self.data().decode(errors="replace")

    def wait_for(self, pred, timeout=DEADLINE, what="output") -> bytes:
        """Waits until pred(all data so far) is true; fails with what arrived if not."""
        end = time.monotonic() + timeout
        with self._lock:
            while True:
                data = b"".join(d for _, d in self._chunks)
                if pred(data):
                    return data
                left = end - time.monotonic()
                if left <= 0 or self.closed:
                    raise AssertionError(f"no {what} within {timeout} s; got {data[-400:]!r}")
                self._changed.wait(left)

    def wait_closed(self, timeout=DEADLINE):
        end = time.monotonic() + timeout
        with self._lock:
            while not self.closed:
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"pipe still open after {timeout} s")
                self._changed.wait(left)


def counter_values(data: bytes) -> list:
    """The numbers the counter guest printed, complete lines only."""
    return [int(line) for line in data.split(b"\n")[:-1] if line.strip()]


class Vmm:
    """One VMM process. `serial` captures its stdout (the serial console with
    `-serial stdio`), `stderr` its stderr."""

    def __init__(self, kind: str, binary: str, args: list, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                 pass_fds=()):
        self.kind = kind
        self.argv = [binary, *args]
        self.proc = subprocess.Popen(self.argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE,
                                     pass_fds=pass_fds)
        self.pid = self.proc.pid
        self.serial = Capture(self.proc.stdout) if stdout == subprocess.PIPE else None
        self.stderr = Capture(self.proc.stderr)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_exit(self, timeout=DEADLINE) -> int:
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.kind} still running {timeout} s later; stderr: {self.stderr.text()!r}")
        # The pipes close with the process (nothing else holds them); read them to the end.
        self.stderr.wait_closed()
        if self.serial:
            self.serial.wait_closed()
        return status

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def threads(self) -> set:
        return {int(t) for t in os.listdir(f"/proc/{self.pid}/task")}

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        try:
            self.proc.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            pass  # a SIGKILLed process that is not gone in 15 s is beyond a test's reach


def wait_until(pred, timeout=DEADLINE, what="condition", interval=0.01):
    """Polls pred() until it returns a true value, which it returns; fails at the deadline."""
    end = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= end:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(interval)


def wait_for_socket(path: Path, vmm: Vmm, timeout=DEADLINE):
    """Waits until the VMM has created its listening socket at `path`."""
    def ready():
        if not vmm.alive():
            raise AssertionError(f"{vmm.kind} exited ({vmm.proc.returncode}) before creating {path}: "
                                 f"{vmm.stderr.text()!r}")
        return path.exists()
    wait_until(ready, timeout, f"socket {path}")
