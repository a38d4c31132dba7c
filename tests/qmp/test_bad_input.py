"""Bad control-plane options (acceptance 5): one clear line on stderr, prefixed with the
program's name as QEMU does, and a non-zero status, before any guest runs. Run against
QEMU too, to show the shape is QEMU's; the texts themselves differ."""

import subprocess

import pytest

from conftest import binary, program_name
from vmm import COMMON_ARGS, DEADLINE

BAD = {
    "monitor-path-cannot-be-created": ["-qmp", "unix:/nonexistent-dir/qmp.sock,server=on,wait=off"],
    "mon-names-no-chardev": ["-mon", "chardev=nope,mode=control"],
    "pidfile-in-missing-dir": ["-pidfile", "/nonexistent-dir/vm.pid"],
    "uuid-is-no-uuid": ["-uuid", "not-a-uuid"],
    "uuid-too-short": ["-uuid", "6b29fc40-ca47-1067-b31d-00dd010662d"],
}


@pytest.mark.parametrize("case", BAD)
def test_bad_option_is_one_line_and_non_zero(kind, guests, case):
    # With -serial stdio and the counter guest: a VMM that ran the guest anyway would
    # print its counter, and would not exit by itself.
    argv = [binary(kind), *COMMON_ARGS, "-serial", "stdio", "-kernel", str(guests / "counter.elf"), *BAD[case]]
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{kind} accepted {BAD[case]} and ran")
    assert r.returncode != 0
    assert r.stdout == b"", "the guest ran"
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{program_name(kind)}: "), lines
    if kind == "microvm":
        assert lines[0].startswith("microvm: "), lines
