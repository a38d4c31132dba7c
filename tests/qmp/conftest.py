"""Fixtures of the QMP tests: which VMM to run, the tiny guests, a private temporary
directory, and a launcher that kills and reaps every VMM at teardown.

Environment (set by `cargo xtask test`; the defaults suit a run from the repository):
  MICROVM_BIN   the microvm binary (default target/debug/microvm)
  QEMU          QEMU's binary (default qemu-system-x86_64)
  TINY_GUESTS   directory of the guests `tiny-guest write DIR` writes (default: written
                here with cargo into the session's temporary directory)
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from qemu.qmp import ConnectError

sys.path.insert(0, str(Path(__file__).parent))

from client import Client, close_all  # noqa: E402
from vmm import COMMON_ARGS, DEADLINE, Vmm, wait_for_socket  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
KINDS = ["microvm", "qemu"]


def binary(kind: str) -> str:
    if kind == "microvm":
        path = os.environ.get("MICROVM_BIN") or str(REPO / "target/debug/microvm")
    else:
        path = shutil.which(os.environ.get("QEMU") or "qemu-system-x86_64") or ""
    if not os.access(path, os.X_OK):
        pytest.fail(f"no {kind} binary (MICROVM_BIN / QEMU): {path!r}")
    return path


def program_name(kind: str) -> str:
    """The prefix of the VMM's error lines: its program name, as QEMU prints it."""
    return Path(binary(kind)).name


@pytest.fixture(scope="session")
def guests(tmp_path_factory) -> Path:
    if os.environ.get("TINY_GUESTS"):
        return Path(os.environ["TINY_GUESTS"])
    out = tmp_path_factory.mktemp("guests")
    subprocess.run(["cargo", "run", "-q", "-p", "tiny-guest", "--", "write", str(out)], cwd=REPO, check=True,
                   timeout=600)
    return out


@pytest.fixture(params=KINDS)
def kind(request) -> str:
    return request.param


@pytest.fixture
def workdir():
    # Short and under /tmp: a Unix socket path must fit in 108 bytes.
    d = Path(tempfile.mkdtemp(prefix="qmp-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


class Launcher:
    def __init__(self, kind, guests, workdir):
        self.kind, self.guests, self.workdir = kind, guests, workdir
        self.started = []

    def __call__(self, *extra, guest="counter", serial="stdio", qmp=True, **popen_kw) -> Vmm:
        """Starts the VMM with COMMON_ARGS, `-kernel GUEST`, `-serial SERIAL`, the `extra`
        arguments and, when `qmp`, a QMP socket `vmm.qmp_path` (waited for)."""
        args = [*COMMON_ARGS, "-serial", serial, "-kernel", str(self.guests / f"{guest}.elf"), *extra]
        qmp_path = self.workdir / f"qmp{len(self.started)}.sock"
        if qmp:
            args += ["-qmp", f"unix:{qmp_path},server=on,wait=off"]
        vm = Vmm(self.kind, binary(self.kind), args, **popen_kw)
        vm.qmp_path = qmp_path
        self.started.append(vm)
        if qmp:
            wait_for_socket(qmp_path, vm)
        return vm

    def kill_all(self):
        for vm in self.started:
            vm.kill()


@pytest.fixture
def launch(kind, guests, workdir):
    launcher = Launcher(kind, guests, workdir)
    yield launcher
    close_all()
    launcher.kill_all()


@pytest.fixture
def connect():
    """connect(address) -> a negotiated qemu.qmp client, closed at teardown.

    A refused connection is retried until the deadline: the socket file appears at bind(),
    a moment before listen(), and a monitor's backlog is short (QEMU's is 1), so a client
    that comes at once, or right after another left, may be turned away for a moment."""
    def make(address) -> Client:
        address = str(address) if isinstance(address, Path) else address
        end = time.monotonic() + DEADLINE
        while True:
            c = Client()
            try:
                c.connect(address)
                return c
            except ConnectError as e:
                c.close()
                if not isinstance(e.exc, (ConnectionRefusedError, BlockingIOError)) or time.monotonic() > end:
                    raise
            time.sleep(0.01)
    yield make
    close_all()
