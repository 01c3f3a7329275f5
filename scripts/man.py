#!/usr/bin/env python3
"""Builds the man pages kagami(1) and kagami.lua(5), and checks that the
configuration reference agrees with the binary.

One source each, so they cannot drift:
  kagami.lua(5)  from docs/config.md (the key tables), checked against
                 `kagami config-keys` (the loader's own tables, i.e. what
                 `kagami check` accepts): the same keys, the same defaults.
  kagami(1)      from the binary's own --help texts (kagami, report, show,
                 replay) plus the fixed sections below (signals, files,
                 environment).

usage: man.py --kagami BIN --out DIR          write DIR/kagami.1, DIR/kagami.lua.5
       man.py --kagami BIN --check            docs/config.md vs the binary
       man.py --kagami BIN --check-readme FILE  FILE's key tables vs docs/config.md
       (--docs FILE reads another reference than docs/config.md)
Exit status 0, or 1 with one line per disagreement.
"""

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "config.md"
SIZE_UNITS = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


def binary_keys(kagami):
    """key -> (type, default text or '') from `kagami config-keys`."""
    out = subprocess.run([kagami, "config-keys"], check=True,
                         capture_output=True, text=True).stdout
    keys = {}
    for line in out.splitlines():
        path, typ, default = line.split("\t")
        keys[path] = (typ, default)
    return keys


def md_tables(text):
    """(section, key, default, meaning) for each row of a `| key | default |
    meaning |` table; section is the last ## or ### heading."""
    rows, section, in_table = [], "", False
    for line in text.splitlines():
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        if re.match(r"^\| *key *\| *default *\| *meaning *\|", line):
            in_table = True
            continue
        if not line.startswith("|"):
            in_table = False
            continue
        if in_table and not line.startswith("|---"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            m = re.fullmatch(r"`([^`]+)`", cells[0])
            if m and len(cells) == 3:
                rows.append((section, m.group(1), cells[1], cells[2]))
    return rows


def norm_default(text):
    """A default as written in docs (`"8MiB"`, `1.0`, `true`, required) or
    by the binary (8MiB, 1, true, ''): a comparable value, or None when it
    is prose (required, none, the global list)."""
    t = text.strip()
    if t.startswith("`") and t.endswith("`"):
        t = t[1:-1]
    elif " " in t or t in ("", "required", "none"):
        return None
    if len(t) >= 2 and t[0] == t[-1] == '"':
        t = t[1:-1]
    if t in ("true", "false"):
        return t
    m = re.fullmatch(r"(\d+)(KiB|MiB|GiB)", t)
    if m:
        return float(int(m.group(1)) * SIZE_UNITS[m.group(2)])
    try:
        return float(t)
    except ValueError:
        return t


def check_docs(kagami, docs_text):
    problems = []
    known = binary_keys(kagami)
    documented = {}
    for _, key, default, _ in md_tables(docs_text):
        if key in documented:
            problems.append("docs/config.md: %s is documented twice" % key)
        documented[key] = default
    for key in known:
        if key not in documented:
            problems.append("docs/config.md: %s is a config key (kagami "
                            "config-keys) but is not documented" % key)
    for key, default in documented.items():
        if key not in known:
            problems.append("docs/config.md: %s is documented but kagami "
                            "does not know it" % key)
            continue
        want = norm_default(known[key][1])
        if want is not None and norm_default(default) != want:
            problems.append("docs/config.md: %s: default %s, but kagami's is "
                            "%s" % (key, default, known[key][1]))
    return problems


def check_readme(readme_text, docs_text):
    documented = {key: d for _, key, d, _ in md_tables(docs_text)}
    problems = []
    for section, key, default, _ in md_tables(readme_text):
        if key not in documented:
            problems.append("README (%s): %s is not in docs/config.md"
                            % (section, key))
        elif norm_default(default) != norm_default(documented[key]):
            problems.append("README (%s): %s: default %s, docs/config.md "
                            "says %s" % (section, key, default,
                                         documented[key]))
    return problems


# --- roff ------------------------------------------------------------------
def roff_text(s):
    """Markdown inline text (`code`, **bold**) as roff."""
    s = s.replace("\\", "\\e").replace("→", "->").replace("-", "\\-")
    s = re.sub(r"`([^`]*)`", r"\\fB\1\\fR", s)
    s = re.sub(r"\*\*([^*]*)\*\*", r"\\fB\1\\fR", s)
    return s


def roff_line(s):
    """A text line that cannot be taken for a request (. or ')."""
    return "\\&" + s if s[:1] in (".", "'") else s


def roff_pre(text):
    lines = [".nf", ".RS 2"]
    lines += [roff_line(l.replace("\\", "\\e").replace("-", "\\-"))
              for l in text.rstrip("\n").split("\n")]
    return lines + [".RE", ".fi"]


def header(name, section, version):
    return ['.\\" Generated by scripts/man.py; edit its sources, not this.',
            '.TH %s %s "" "kagami %s" "kagami"' % (name.upper(), section,
                                                   version)]


def config_page(docs_text, version):
    out = header("kagami.lua", 5, version)
    out += [".SH NAME", "kagami.lua \\- kagami configuration file",
            ".SH SYNOPSIS", "\\fB/etc/kagami/kagami.lua\\fR",
            ".SH DESCRIPTION"]
    intro = docs_text.split("\n## ", 1)[0].split("\n", 2)[2]
    # The first paragraph speaks of this file as the source: say it as
    # a man page would.
    paras = [p for p in intro.strip().split("\n\n")][1:]
    for p in paras:
        out += [roff_text(" ".join(p.split())), ".PP"]
    out += ["Every key is checked when kagami starts and by \\fBkagami "
            "check\\fR; an unknown key, a wrong type or an impossible "
            "combination is an error of the form "
            "\\fIFILE\\fR:\\fILINE\\fR: \\fIkey\\fR: \\fImessage\\fR."]
    current = None
    for section, key, default, meaning in md_tables(docs_text):
        if section != current:
            out += [".SH %s" % roff_text(section.upper())]
            current = section
        out += [".TP", "\\fB%s\\fR (default: %s)" % (roff_text(key),
                                                     roff_text(default)),
                roff_text(meaning)]
    out += [".SH SEE ALSO", "\\fBkagami\\fR(1)"]
    return "\n".join(out) + "\n"


COMMAND_PAGE_TAIL = """\
.SH SIGNALS
.TP
.B SIGHUP
Reopen the diff log and read the config file again. A valid config applies
to requests that start after it; an invalid one is logged and the running
config stays. Settings bound at start (listen, workers, backend names,
diff_log, store, record, admin, noise, latency_regression) cannot change
by reload.
.TP
.BR SIGINT ", " SIGTERM
Stop gracefully: stop accepting, let in\\-flight master responses finish,
write the results already compared, exit 0. A second signal exits at once.
.SH ENVIRONMENT
.TP
.B NOTIFY_SOCKET
Set by systemd for Type=notify services: kagami sends READY=1 once every
listener is bound, RELOADING=1 and READY=1 around a SIGHUP reload, and
STOPPING=1 when it stops.
.TP
.B STATE_DIRECTORY
Set by systemd's StateDirectory=: a config without \\fBstore\\fR keeps its
results in \\fI$STATE_DIRECTORY/kagami.db\\fR instead of the working
directory.
.TP
.B NO_COLOR
Turns off colour in \\fBkagami show\\fR.
.TP
.B KAGAMI_ADMIN_TOKEN
The admin token \\fBkagami noise\\fR sends, and \\fBkagami admin\\fR requires
when no \\fB\\-\\-token\\-file\\fR is given.
.SH FILES
.TP
.I /etc/kagami/kagami.lua
The configuration the packaged service runs (see \\fBkagami.lua\\fR(5)).
.TP
.I /var/lib/kagami/kagami.db
The results store of the packaged service (StateDirectory=kagami).
.TP
.I /var/log/kagami/diffs.jsonl
Its diff log (LogsDirectory=kagami), rotated by logrotate.
.SH EXIT STATUS
\\fBrun\\fR and \\fBcheck\\fR exit 0, or 1 with a message on standard error.
\\fBreport\\fR and \\fBshow\\fR exit 0 when they printed, 1 on a usage or
store error, 2 when nothing matched.
\\fBadmin\\fR exits 0 after SIGINT or SIGTERM, or 1 when its options, its
store or its address are unusable.
.SH SEE ALSO
\\fBkagami.lua\\fR(5), \\fBsystemctl\\fR(1), \\fBsystemd.exec\\fR(5)
"""


def command_page(kagami, version):
    def helptext(*args):
        p = subprocess.run([kagami, *args], capture_output=True, text=True)
        return p.stdout or p.stderr

    usage = helptext("--help")
    summary, _, rest = usage.partition("\ncommands:\n")
    commands, _, notes = rest.partition("\n\n")
    out = header("kagami", 1, version)
    out += [".SH NAME", "kagami \\- HTTP shadow proxy and response differ",
            ".SH SYNOPSIS"]
    for line in commands.split("\n"):
        m = re.match(r"  (\S.*?)(?:   +|$)", line)
        if m and not line.startswith("   "):
            out += ["\\fBkagami\\fR %s" % roff_text(m.group(1)), ".br"]
    out += [".SH DESCRIPTION"]
    desc = summary.split("\n\n", 1)[1] if "\n\n" in summary else summary
    out += [roff_text(" ".join(desc.split()))]
    out += [".SH COMMANDS"] + roff_pre(commands)
    if notes.strip():
        out += [".PP", roff_text(" ".join(notes.split()))]
    for cmd in ("report", "show", "admin", "replay"):
        out += [".SS kagami %s" % cmd] + roff_pre(helptext(cmd, "--help"))
    return "\n".join(out) + "\n" + COMMAND_PAGE_TAIL


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kagami", required=True)
    ap.add_argument("--out")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--check-readme")
    ap.add_argument("--docs", default=str(DOCS),
                    help="the configuration reference (docs/config.md)")
    args = ap.parse_args()
    docs_text = Path(args.docs).read_text()
    problems = []
    if args.check:
        problems += check_docs(args.kagami, docs_text)
    if args.check_readme:
        problems += check_readme(Path(args.check_readme).read_text(),
                                 docs_text)
    if args.out:
        version = subprocess.run([args.kagami, "--version"], check=True,
                                 capture_output=True,
                                 text=True).stdout.split()[-1]
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "kagami.lua.5").write_text(config_page(docs_text, version))
        (out / "kagami.1").write_text(command_page(args.kagami, version))
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
