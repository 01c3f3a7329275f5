"""Installing and running as a service: every shipped config passes
`kagami check`, `make install` / `make uninstall` honour PREFIX and
DESTDIR, the systemd unit passes `systemd-analyze verify`, and the
configuration reference cannot drift from the keys kagami knows."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import REPO_ROOT, run_cli

SHIPPED_CONFIGS = sorted(REPO_ROOT.glob("examples/*.lua")) + [
    REPO_ROOT / "dist" / "kagami.lua"]


@pytest.mark.parametrize("config", SHIPPED_CONFIGS,
                         ids=[p.name for p in SHIPPED_CONFIGS])
def test_shipped_config_passes_check(config):
    proc = run_cli("check", config)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("%s: ok" % config)


def test_examples_cover_the_documented_cases():
    """The cases the docs point users to exist (and so are checked above)."""
    names = {p.name for p in SHIPPED_CONFIGS}
    assert {"db-upgrade.lua", "api-rules.lua", "exclude-endpoints.lua",
            "sandboxed-writes.lua", "from-kage.lua"} <= names
    guide = (REPO_ROOT / "docs" / "migrating.md").read_text()
    for name in ("from-kage.lua", "db-upgrade.lua", "api-rules.lua",
                 "sandboxed-writes.lua"):
        assert "examples/" + name in guide


def make(*args):
    proc = subprocess.run(["make", "-s", "--no-print-directory", *args],
                          cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_install_and_uninstall_honour_prefix_and_destdir(tmp_path):
    root = tmp_path / "root"
    make("install", "DESTDIR=%s" % root, "PREFIX=/usr")
    binary = root / "usr/bin/kagami"
    config = root / "etc/kagami/kagami.lua"
    unit = root / "usr/lib/systemd/system/kagami.service"
    for path in (binary, config, unit, root / "etc/logrotate.d/kagami",
                 root / "usr/share/man/man1/kagami.1",
                 root / "usr/share/man/man5/kagami.lua.5",
                 root / "usr/share/doc/kagami/examples/from-kage.lua",
                 root / "usr/share/doc/kagami/migrating.md"):
        assert path.is_file(), path
    assert os.access(binary, os.X_OK)
    out = subprocess.run([binary, "--version"], capture_output=True,
                         text=True, check=True).stdout
    assert out.startswith("kagami ")
    proc = subprocess.run([binary, "check", config], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert "ExecStart=/usr/bin/kagami run" in unit.read_text()

    # A config someone edited survives a second install and an uninstall.
    config.write_text(config.read_text() + "-- mine\n")
    make("install", "DESTDIR=%s" % root, "PREFIX=/usr")
    assert config.read_text().endswith("-- mine\n")
    make("uninstall", "DESTDIR=%s" % root, "PREFIX=/usr")
    assert not binary.exists() and not unit.exists()
    assert not (root / "usr/share/man/man1/kagami.1").exists()
    assert not (root / "usr/share/doc/kagami").exists()
    assert config.read_text().endswith("-- mine\n")

    # The unit follows PREFIX.
    make("install", "DESTDIR=%s" % (tmp_path / "local"))
    local_unit = tmp_path / "local/usr/local/lib/systemd/system/kagami.service"
    assert "ExecStart=/usr/local/bin/kagami run" in local_unit.read_text()


def test_unit_passes_systemd_analyze_verify(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed (scripts/deps.sh test "
                    "installs systemd)")
    root = tmp_path / "root"
    make("install", "DESTDIR=%s" % root, "PREFIX=/usr")
    # verify checks that ExecStart's binary exists: point it at the one
    # just installed under DESTDIR.
    unit = tmp_path / "kagami.service"
    unit.write_text((root / "usr/lib/systemd/system/kagami.service")
                    .read_text().replace("/usr/bin/kagami",
                                         str(root / "usr/bin/kagami")))
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no",
                           str(unit)], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr
    text = unit.read_text()
    for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID",
                 "DynamicUser=yes", "StateDirectory=kagami",
                 "ProtectSystem=strict", "NoNewPrivileges=yes",
                 "CapabilityBoundingSet=\n"):
        assert line in text, line


def man_check(docs):
    return subprocess.run(
        ["/usr/bin/python3", str(REPO_ROOT / "scripts/man.py"), "--kagami",
         str(REPO_ROOT / "build/kagami"), "--check", "--docs", str(docs)],
        capture_output=True, text=True)


@pytest.fixture
def release_binary():
    if not (REPO_ROOT / "build/kagami").is_file():
        pytest.skip("build/kagami not built")


def test_reference_matches_the_keys_kagami_knows(release_binary):
    proc = man_check(REPO_ROOT / "docs/config.md")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("edit,message", [
    (lambda t: t.replace("| `noise.min_pairs` | `10` |",
                         "| `noise.min_pairs_x` | `10` |"),
     "noise.min_pairs is a config key (kagami config-keys) but is not "
     "documented"),
    (lambda t: t + "| `noise.bogus` | `1` | x |\n",
     "noise.bogus is documented but kagami does not know it"),
    (lambda t: t.replace("| `max_headers` | `100` |", "| `max_headers` | `200` |"),
     "max_headers: default `200`, but kagami's is 100"),
])
def test_reference_drift_is_caught(tmp_path, release_binary, edit, message):
    docs = tmp_path / "config.md"
    docs.write_text(edit((REPO_ROOT / "docs/config.md").read_text()))
    proc = man_check(docs)
    assert proc.returncode == 1
    assert message in proc.stderr, proc.stderr


def test_config_keys_lists_keys_and_takes_no_arguments():
    proc = run_cli("config-keys")
    assert proc.returncode == 0, proc.stderr
    assert "noise.min_pairs\tcount\t10\n" in proc.stdout
    proc = run_cli("config-keys", "extra")
    assert proc.returncode == 1
    assert "kagami config-keys: takes no arguments" in proc.stderr
