"""What the Firecracker client tests share: the microvm binary and tiny guests they run,
and starting, reading and stopping a Firecracker-mode microvm."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 30


def microvm_bin() -> str:
    path = os.environ.get("MICROVM_BIN") or str(REPO / "target/debug/microvm")
    if not os.access(path, os.X_OK):
        pytest.fail(f"no microvm binary (MICROVM_BIN): {path!r}")
    return path


def guest(name: str) -> Path:
    directory = os.environ.get("TINY_GUESTS") or str(REPO / "target/qmp-guests")
    path = Path(directory) / f"{name}.elf"
    if not path.exists():
        pytest.fail(f"no tiny guest {path} (cargo run -p tiny-guest -- write DIR; TINY_GUESTS=DIR)")
    return path


def start(socket: Path, *extra: str):
    """A Firecracker-mode microvm whose serial console (stdout) is kept, once its API
    socket is there."""
    process = subprocess.Popen([microvm_bin(), "--api-sock", str(socket), *extra], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + DEADLINE
    while not socket.exists():
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "no API socket"
        time.sleep(0.01)
    return process


def counts(process, at_least: int) -> list:
    """Reads the counter guest's lines from `process` until it printed `at_least` more."""
    values = []
    deadline = time.monotonic() + DEADLINE
    while len(values) < at_least:
        assert time.monotonic() < deadline, f"only {values} printed"
        line = process.stdout.readline()
        assert line, "the console closed"
        values.append(int(line))
    return values


def stop(process) -> list:
    """SIGTERM, reaped; the numbers the guest printed after the last line read."""
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=DEADLINE)
    errors = process.stderr.read().decode(errors="replace")
    assert "panicked" not in errors and "seccomp" not in errors, errors
    rest = process.stdout.read()
    return [int(line) for line in rest.split(b"\n") if line.strip().isdigit()]
