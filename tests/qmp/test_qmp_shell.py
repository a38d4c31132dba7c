"""One scripted session of `qmp-shell`, QEMU's interactive QMP client from the same
qemu.qmp package (acceptance 3). It reads its commands with input(), so a script on its
standard input drives it without a terminal; it prints each reply as one line of JSON
after its `(QEMU) ` prompt.

The script does not end with `quit`: qmp-shell closes its connection only when its input
ends, and if the VMM has hung up first, qemu.qmp re-raises that EOF and qmp-shell dies
with a traceback. With QEMU, whose exit takes a few ms, the race usually goes the other
way; it is qmp-shell's, not the VMM's."""

import json
import subprocess
import sys
from pathlib import Path

from vmm import DEADLINE

# qmp-shell passes `key=value` values as they are typed, quotes included: no spaces.
SCRIPT = """\
query-status
stop
query-status
human-monitor-command command-line=cont
query-status
stop
cont
query-status
no-such-command
"""


def replies(stdout: str) -> list:
    """The JSON replies, in order, with the prompts in front of them taken off."""
    out = []
    for line in stdout.splitlines():
        while line.startswith("(QEMU) "):
            line = line[len("(QEMU) "):]
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def test_scripted_qmp_shell_session(launch):
    vm = launch()
    shell = Path(sys.executable).parent / "qmp-shell"
    r = subprocess.run([str(shell), str(vm.qmp_path)], input=SCRIPT, capture_output=True, text=True,
                       timeout=DEADLINE)
    assert r.returncode == 0, r.stderr
    assert "Welcome to the QMP low-level shell!" in r.stdout
    assert "Connected to QEMU " in r.stdout, r.stdout

    got = replies(r.stdout)
    assert len(got) == 9, r.stdout
    assert got[0]["return"]["status"] == "running"
    assert got[1] == {"return": {}}
    assert got[2]["return"]["status"] == "paused"
    assert got[3] == {"return": ""}  # HMP's cont prints nothing
    assert got[4]["return"]["status"] == "running"
    assert got[5] == got[6] == {"return": {}}
    assert got[7]["return"]["status"] == "running"
    assert got[8]["error"]["class"] == "CommandNotFound"
    # The session ended at the end of its script; the VM runs on.
    assert vm.alive()
