"""Every shipped config passes `kagami check`."""

import pytest

from harness import REPO_ROOT, run_cli

SHIPPED_CONFIGS = sorted(REPO_ROOT.glob("examples/*.lua"))


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
