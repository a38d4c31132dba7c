"""-daemonize and -pidfile (acceptance 2): the parent exits 0 only once the daemon is
ready, or non-zero with one line of error; the pidfile names the live daemon, is locked
while it runs and is removed when it ends; a pidfile locked by a live VMM is an error."""

import fcntl
import os
import signal
import subprocess
import time

import pytest

from client import Client
from conftest import binary, program_name
from vmm import COMMON_ARGS, DEADLINE, wait_until


def gone(pid) -> bool:
    """The daemon is not our child: once it exits, whoever adopted it reaps it (or it
    stays a zombie, which is gone as far as the tests care)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.fixture
def daemonize(kind, guests, workdir):
    """daemonize(name, *extra) -> (parent's exit status, stderr text, argv): runs the
    VMM with -daemonize and waits for the parent only. Daemons are killed at teardown."""
    pidfiles = []

    def run(name, *extra, pidfile=None):
        pidfile = pidfile or workdir / f"{name}.pid"
        pidfiles.append(pidfile)
        # stderr goes to a file: a pipe would stay open in the daemon, for as long as it
        # keeps the descriptor, and reading it to its end would wait for that.
        err_path = workdir / f"{name}.stderr"
        argv = [binary(kind), *COMMON_ARGS, "-serial", "none", "-kernel", str(guests / "counter.elf"),
                "-daemonize", "-pidfile", str(pidfile), "-qmp", f"unix:{workdir / name}.sock,server=on,wait=off",
                *extra]
        with open(err_path, "wb") as err:
            parent = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        try:
            status = parent.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            parent.kill()
            parent.wait()
            raise AssertionError(f"the -daemonize parent did not exit within {DEADLINE} s") from None
        return status, err_path

    yield run
    for pidfile in pidfiles:
        try:
            pid = int(pidfile.read_text())
        except (OSError, ValueError):
            continue
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)


def one_error_line(err_path, prog) -> str:
    """The single line of error in `err_path`. QEMU's daemon child writes it after its
    parent has exited; microvm's parent relays it before exiting: wait for it, then
    make sure no second line follows."""
    wait_until(lambda: err_path.read_bytes().endswith(b"\n"), what=f"an error line in {err_path}")
    time.sleep(0.2)
    lines = err_path.read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: "), lines
    return lines[0]


def test_daemonize_pidfile_lifecycle(kind, daemonize, workdir):
    status, err = daemonize("vm")
    assert status == 0, err.read_text()
    # Ready when the parent exits: the monitor socket and the pidfile are there.
    sock, pidfile = workdir / "vm.sock", workdir / "vm.pid"
    assert sock.exists(), "parent exited before the monitor socket was created"
    text = pidfile.read_text()
    assert text.endswith("\n") and text.strip().isdigit(), repr(text)
    pid = int(text)
    assert not gone(pid), f"pidfile names {pid}, which is not running"
    # Detached from our session (QEMU forks twice: setsid, then a child that is no
    # session leader and so can never get a controlling terminal).
    assert os.getsid(pid) != os.getsid(0), "the daemon is still in the caller's session"
    assert os.readlink(f"/proc/{pid}/exe") == os.path.realpath(binary(kind))

    # Locked while the daemon lives.
    with open(pidfile, "r+") as f, pytest.raises(OSError):
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)

    qmp = Client()
    qmp.connect(str(sock))
    assert qmp.cmd("query-status")["status"] == "running"
    qmp.cmd("quit")
    assert qmp.event("SHUTDOWN")["data"]["reason"] == "host-qmp-quit"
    qmp.close()
    wait_until(lambda: gone(pid), what=f"daemon {pid} gone after quit")
    assert not pidfile.exists(), "pidfile left behind"
    assert not sock.exists(), "monitor socket left behind"


def test_pidfile_of_a_live_vmm_is_an_error(kind, daemonize, workdir, guests):
    status, err = daemonize("first")
    assert status == 0, err.read_text()
    pidfile = workdir / "first.pid"
    pid = int(pidfile.read_text())

    # Without -daemonize: fails before starting the guest.
    plain = subprocess.run([binary(kind), *COMMON_ARGS, "-serial", "none", "-kernel", str(guests / "counter.elf"),
                            "-pidfile", str(pidfile)], capture_output=True, text=True, timeout=DEADLINE)
    assert plain.returncode != 0
    lines = plain.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{program_name(kind)}: "), lines

    # With -daemonize: the parent fails, and the error is one line.
    status, err = daemonize("second", pidfile=pidfile)
    assert status != 0
    one_error_line(err, program_name(kind))

    # The first one is untouched: still running, still named by its pidfile.
    assert not gone(pid)
    assert int(pidfile.read_text()) == pid
    qmp = Client()
    qmp.connect(str(workdir / "first.sock"))
    assert qmp.cmd("query-status")["status"] == "running"
    qmp.close()


def test_daemon_that_fails_to_start_fails_its_parent(kind, daemonize):
    # An error only the child can meet (loading the kernel): the parent must not exit 0.
    status, err = daemonize("bad", "-kernel", "/nonexistent/guest.elf")
    assert status != 0
    # QEMU's loader says "qemu: could not open kernel file ...", not its program name.
    line = one_error_line(err, program_name(kind) if kind == "microvm" else "qemu")
    assert "/nonexistent/guest.elf" in line
