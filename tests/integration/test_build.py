"""The build as a fresh machine runs it (issue 16): every compile waits for
the packages, so `make -j2` does not race apt-get against the compiler."""

import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def planned(*targets):
    """The commands `make -n -B` would run for targets, in order."""
    out = subprocess.run(["make", "-n", "-B", *targets], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    return [line for line in out.splitlines() if line.strip()]


def test_every_compile_waits_for_the_packages():
    for target, deps in (("build/obj/src/common/buf.o", "scripts/deps.sh build"),
                         ("build/asan/src/common/buf.o", "scripts/deps.sh build"),
                         ("build/fuzz/obj/src/common/buf.o", "scripts/deps.sh test")):
        cmds = planned(target)
        first_compile = next(i for i, c in enumerate(cmds) if " -c " in c)
        installs = [i for i, c in enumerate(cmds) if deps in c]
        assert installs and installs[0] < first_compile, (target, cmds[:4])
