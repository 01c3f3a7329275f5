"""The command line: run, check, --version, --help, unknown options."""

import re
import socket
import subprocess
import textwrap

import pytest

from harness import kagami_bin, run_cli, sanitizer_env, sanitizer_reports

GOOD = """\
-- a complete, valid config
return {
  listen = "127.0.0.1:18090",
  client_timeout = 15,
  backend_timeout = 10,
  backends = {
    production = { url = "http://127.0.0.1:19001", master = true },
    newdb      = { url = "http://127.0.0.1:19002" },
  },
  shadow_methods = { "GET", "HEAD" },
  sample = 0.5,
  diff_log = "diffs.jsonl",
  select_backends = function(req)
    if req.path == "/ads" then return { "production" } end
    return nil
  end,
  munge_headers = function(backend, req, headers)
    if backend ~= "production" then headers["X-Shadow"] = "1" end
  end,
  on_backends_finished = function(backends, req, responses) end,
}
"""

MINIMAL = """\
return {
  listen = "127.0.0.1:18090",
  backends = { production = { url = "http://127.0.0.1:19001", master = true } },
}
"""

BACKENDS = """\
  backends = {
    production = { url = "http://127.0.0.1:19001", master = true },
    newdb = { url = "http://127.0.0.1:19002" },
  },
"""

# name -> (config text, line the error is on or None, a word the message
# must contain or None)
BAD = {
    "syntax_error": ("""\
return {
  listen = "127.0.0.1:18090",
  backends = {
    production = { url = "http://127.0.0.1:19001", master = true }
    newdb = { url = "http://127.0.0.1:19002" },
  },
}
""", 5, None),
    "runtime_error": ("""\
local t = nil
return { listen = t.listen }
""", 2, None),
    "not_a_table": ("return 42\n", None, None),
    "sample_out_of_range": ("""\
return {
  listen = "127.0.0.1:18090",
%s  sample = 2,
}
""" % BACKENDS, 7, "sample"),
    "unknown_key": ("""\
return {
  listen = "127.0.0.1:18090",
%s  sampel = 0.5,
}
""" % BACKENDS, 7, "sampel"),
    "bad_listen": ("""\
return {
  listen = "nowhere",
%s}
""" % BACKENDS, 2, "listen"),
    "bad_url": ("""\
return {
  listen = "127.0.0.1:18090",
  backends = {
    production = { url = "ftp://127.0.0.1:19001", master = true },
  },
}
""", 4, "url"),
    "no_master": ("""\
return {
  listen = "127.0.0.1:18090",
  backends = {
    production = { url = "http://127.0.0.1:19001" },
    newdb = { url = "http://127.0.0.1:19002" },
  },
}
""", None, "master"),
    "two_masters": ("""\
return {
  listen = "127.0.0.1:18090",
  backends = {
    production = { url = "http://127.0.0.1:19001", master = true },
    newdb = { url = "http://127.0.0.1:19002", master = true },
  },
}
""", None, "master"),
    "no_backends": ("""\
return {
  listen = "127.0.0.1:18090",
}
""", None, "backends"),
    "hook_not_a_function": ("""\
return {
  listen = "127.0.0.1:18090",
%s  select_backends = 42,
}
""" % BACKENDS, 7, "select_backends"),
    "bad_timeout_type": ("""\
return {
  listen = "127.0.0.1:18090",
  backend_timeout = "soon",
%s}
""" % BACKENDS, 3, "backend_timeout"),
}


def write(tmp_path, name, text):
    path = tmp_path / (name + ".lua")
    path.write_text(text)
    return path


def test_version():
    p = run_cli("--version")
    assert p.returncode == 0
    assert "kagami" in p.stdout.lower()
    assert re.search(r"\d+\.\d+", p.stdout), p.stdout


def test_help():
    p = run_cli("--help")
    assert p.returncode == 0
    assert "run" in p.stdout and "check" in p.stdout, p.stdout


@pytest.mark.parametrize("cmd", ["run", "check"])
def test_command_help(cmd):
    for flag in ("--help", "-h"):
        p = run_cli(cmd, flag)
        assert p.returncode == 0, p.stderr
        assert p.stdout.startswith("usage: kagami %s CONFIG.lua" % cmd), p.stdout


def test_start_line_says_what_runs(make_backend, start_kagami, tmp_path):
    production = make_backend("production")
    newdb = make_backend("newdb")
    k = start_kagami([production, newdb], options={
        "noise": {"learn": True, "shadow_twice": 0.25, "min_pairs": 7},
        "record": {"file": str(tmp_path / "rec.warc"), "sample": 0.5}})
    line = next(x for x in k.stderr().splitlines() if "listening on" in x)
    assert "learning noise from the shadow asked twice (25% of shadowed safe requests) " \
        "after 7 pairs" in line, line
    assert "recording 50%% of requests to %s" % (tmp_path / "rec.warc") in line, line


@pytest.mark.parametrize("args", [["--bogus"], ["run", "--bogus"],
                                  ["-Z"]])
def test_unknown_option_exits_1(args):
    p = run_cli(*args)
    assert p.returncode == 1
    assert p.stderr.strip(), "no message for unknown option"


@pytest.mark.parametrize("args", [[], ["frobnicate"], ["check"], ["run"]])
def test_usage_errors_exit_nonzero(args):
    p = run_cli(*args)
    assert p.returncode != 0
    assert (p.stderr + p.stdout).strip()


@pytest.mark.parametrize("text", [GOOD, MINIMAL], ids=["full", "minimal"])
def test_check_good_config(tmp_path, text):
    path = write(tmp_path, "good", text)
    p = run_cli("check", path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Error" not in p.stderr


@pytest.mark.parametrize("case", sorted(BAD))
def test_check_bad_config(tmp_path, case):
    text, line, word = BAD[case]
    path = write(tmp_path, case, text)
    p = run_cli("check", path)
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    if line is not None:
        prefix = "%s:%d: " % (path, line)
        assert prefix in out, "want %r in:\n%s" % (prefix, out)
    else:
        assert re.search(r"^%s:\d+: \S" % re.escape(str(path)), out, re.M), \
            out
    if word is not None:
        assert word in out, out


def test_check_missing_file(tmp_path):
    path = tmp_path / "nope.lua"
    p = run_cli("check", path)
    assert p.returncode == 1
    assert str(path) in p.stdout + p.stderr


def test_check_does_not_start_a_server(tmp_path):
    path = write(tmp_path, "good", GOOD)
    p = run_cli("check", path, timeout=10)  # would time out if it served
    assert p.returncode == 0


def test_run_with_bad_config_exits_1_with_the_same_message(tmp_path):
    text, line, _ = BAD["sample_out_of_range"]
    path = write(tmp_path, "bad", text)
    p = subprocess.run([str(kagami_bin()), "run", str(path)],
                       capture_output=True, text=True, timeout=20,
                       env=sanitizer_env())
    assert not sanitizer_reports(p.stderr), p.stderr
    assert p.returncode == 1
    assert "%s:%d: " % (path, line) in p.stdout + p.stderr


def test_run_with_listen_port_in_use_fails(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        path = write(tmp_path, "busy", textwrap.dedent("""\
            return {
              listen = "127.0.0.1:%d",
              backends = { production = { url = "http://127.0.0.1:19001",
                                          master = true } },
            }
            """ % port))
        p = subprocess.run([str(kagami_bin()), "run", str(path)],
                           capture_output=True, text=True, timeout=20,
                           env=sanitizer_env())
    assert not sanitizer_reports(p.stderr), p.stderr
    assert p.returncode != 0
    assert "127.0.0.1:%d" % port in p.stderr


def test_check_reports_every_mistake_in_file_order(tmp_path):
    """One `kagami check` names every key it finds wrong, in the order of
    the file's lines (issue 16), not just the first."""
    conf = tmp_path / "multi.lua"
    conf.write_text(textwrap.dedent("""\
        return {
          client_timeout = -1,
          backends = {
            production = { url = "http://127.0.0.1:9001", master = true },
            newdb = { url = "localhost" },
          },
          sample = 2,
          noise = { learn = "yes" },
          bogus_key = 1,
        }
        """))
    p = run_cli("check", conf)
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert [l.split(": ", 1)[0].rsplit(":", 1)[1] for l in lines] == \
        ["2", "5", "7", "8", "9"], lines
    assert "client_timeout" in lines[0] and "backends.newdb.url" in lines[1]
    assert "sample" in lines[2] and "noise.learn" in lines[3] and "bogus_key" in lines[4]
