"""Write the man pages from the sources of ``--help`` and of ``etc/musiqued.toml``.

``python man/generate.py [DIR]`` (``make man``) writes ``musiquectl.1``, ``musiqued.8`` and
``musiqued.toml.5`` into DIR (default: this folder). The commands' pages come from the click
commands themselves (their help, usage, options, and each subcommand's), so a page says what
``--help`` says; the configuration's page comes from the example file's keys, defaults and
comments. The pages are committed: installing needs no Python package beyond the project's.
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from musiquectl.cli import cli as musiquectl_command  # noqa: E402
from musiqued import __version__  # noqa: E402
from musiqued.app.cli import command as musiqued_command  # noqa: E402

DATE = "2026"
SOURCE = f"musique {__version__}"


def roff(text: str) -> str:
    """``text`` safe in a roff line: backslashes and hyphens escaped, a leading dot or quote
    neutralised, every non-ASCII character written as ``\\[uXXXX]`` (no preprocessor needed)."""
    out = text.replace("\\", "\\e").replace("-", "\\-").replace('"', "\\(dq")
    out = "".join(ch if ord(ch) < 128 else f"\\[u{ord(ch):04X}]" for ch in out)
    if out.startswith((".", "'")):
        out = "\\&" + out
    return out


def paragraphs(help_text: str) -> Iterator[str]:
    """click's help as roff paragraphs: ``\\b`` blocks kept line by line, others filled."""
    for block in re.split(r"\n\s*\n", help_text.strip()):
        lines = block.splitlines()
        if lines and lines[0].strip() == "\b":
            body = "\n".join(roff(line) for line in lines[1:])
            yield f".PP\n.nf\n{body}\n.fi"
        else:
            yield ".PP\n" + roff(" ".join(line.strip() for line in lines))


def options(command: click.Command, ctx: click.Context) -> list[str]:
    out = []
    for param in command.get_params(ctx):
        if isinstance(param, click.Argument):
            continue  # named in the usage line; click gives arguments no help of their own
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, text = record
        out.append(f".TP\n.B {roff(names)}\n{roff(text) if text else ''}".rstrip())
    return out


def command_section(command: click.Command, path: list[str], parent: click.Context) -> list[str]:
    """One command's part of ``musiquectl(1)``, its subcommands after it."""
    ctx = click.Context(command, info_name=path[-1], parent=parent)
    usage = " ".join([*path, *command.collect_usage_pieces(ctx)])
    out = [f".SS {roff(' '.join(path[1:]))}", f".B {roff(usage)}"]
    out.extend(paragraphs(command.help or ""))
    out.extend(options(command, ctx))
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None:
                out.extend(command_section(sub, [*path, name], ctx))
    return out


def header(name: str, section: int, title: str) -> list[str]:
    return [
        f'.TH {name.upper()} {section} "{DATE}" "{SOURCE}" "{title}"',
        ".SH NAME",
        f"{roff(name)} \\- {roff(DESCRIPTIONS[name])}",
    ]


DESCRIPTIONS = {
    "musiquectl": "control musiqued, the Last.fm listening-history daemon",
    "musiqued": "keep a complete Last.fm listening history",
    "musiqued.toml": "configuration of musiqued",
}


def musiquectl_page() -> str:
    group = musiquectl_command
    ctx = click.Context(group, info_name="musiquectl")
    out = header("musiquectl", 1, "User Commands")
    out += [".SH SYNOPSIS", ".B musiquectl", roff("[OPTIONS] COMMAND [ARGS]...")]
    out += [".SH DESCRIPTION", *paragraphs(group.help or "")]
    out += [".SH OPTIONS", *options(group, ctx)]
    out += [".SH COMMANDS"]
    for name in group.list_commands(ctx):
        sub = group.get_command(ctx, name)
        if sub is not None:
            out += command_section(sub, ["musiquectl", name], ctx)
    exits = (sys.modules["musiquectl.cli"].__doc__ or "").split("\n\n", 1)[1]
    out += [".SH EXIT STATUS", *paragraphs(exits)]
    out += [
        ".SH ENVIRONMENT",
        ".TP\n.B MUSIQUED_SOCKET\n" + roff("The daemon's socket, when --socket is not given."),
        ".TP\n.B XDG_RUNTIME_DIR\n"
        + roff("Where the user daemon's socket is looked for (musiqued/musiqued.sock)."),
        ".SH SEE ALSO",
        roff("musiqued(8), musiqued.toml(5); the reference in docs/musiquectl.md."),
    ]
    return "\n".join(out) + "\n"


def musiqued_page() -> str:
    command = musiqued_command()
    ctx = click.Context(command, info_name="musiqued")
    out = header("musiqued", 8, "System Administration")
    out += [".SH SYNOPSIS", ".B musiqued", roff("[OPTIONS]")]
    out += [".SH DESCRIPTION", *paragraphs(command.help or "")]
    out += paragraphs(
        "It imports the whole Last.fm history of one user into SQLite, records new scrobbles "
        "as they happen, enriches albums and artists, and answers musiquectl(1) over a "
        "JSON-RPC Unix socket. Under systemd it is Type=notify, may be socket-activated, "
        "and logs to the journal; SIGHUP re-reads the configuration, SIGTERM and SIGINT "
        "stop it cleanly."
    )
    out += [".SH OPTIONS", *options(command, ctx)]
    out += [
        ".SH EXIT STATUS",
        ".TP\n.B 0\n" + roff("Stopped cleanly, or --check-config found the configuration valid."),
        ".TP\n.B 1\n" + roff("Something a retry may fix (no space left, for example)."),
        ".TP\n.B 75\n" + roff("Another musiqued holds the database or the socket."),
        ".TP\n.B 78\n"
        + roff("A human must fix something: the configuration, the database file, the socket."),
        ".SH FILES",
        ".TP\n.B /etc/musique/musiqued.toml\n" + roff("The system daemon's configuration."),
        ".TP\n.B /var/lib/musiqued/musique.db\n" + roff("The system daemon's database."),
        ".TP\n.B /run/musiqued/musiqued.sock\n" + roff("The system daemon's control socket."),
        ".SH SEE ALSO",
        roff("musiquectl(1), musiqued.toml(5), systemd.service(5), journalctl(1); "),
        roff("the reference in docs/systemd.md and docs/configuration.md."),
    ]
    return "\n".join(out) + "\n"


def _comments(text: str) -> dict[tuple[str, str], str]:
    """Each key's comment in the example file (its own line's, and the lines under it that
    hold only a comment)."""
    found: dict[tuple[str, str], str] = {}
    section, key = "", ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section, key = stripped[1:-1], ""
        elif "=" in stripped and not stripped.startswith("#") and section:
            key = stripped.split("=", 1)[0].strip()
            found[(section, key)] = line.partition("#")[2].strip() if "#" in line else ""
        elif stripped.startswith("#") and key:
            found[(section, key)] += " " + stripped.lstrip("#").strip()
        else:
            key = ""
    return found


def toml_page() -> str:
    text = (ROOT / "etc" / "musiqued.toml").read_text(encoding="utf-8")
    intro = "\n".join(
        line.lstrip("#").strip() for line in text.split("\n\n", 1)[0].splitlines()[1:]
    )
    out = header("musiqued.toml", 5, "File Formats")
    out += [".SH DESCRIPTION", *paragraphs(intro)]
    comments = _comments(text)
    for section, keys in tomllib.loads(text).items():
        out.append(f".SH [{roff(section)}]")
        for key, value in keys.items():
            shown = repr(value).replace("'", '"') if isinstance(value, str) else str(value)
            shown = shown.lower() if isinstance(value, bool) else shown
            out.append(f".TP\n.B {roff(key)} = {roff(shown)}")
            out.append(roff(comments.get((section, key), "").strip()) or roff("(no comment)"))
    out += [".SH SEE ALSO", roff("musiqued(8), musiquectl(1); docs/configuration.md.")]
    return "\n".join(out) + "\n"


PAGES = {"musiquectl.1": musiquectl_page, "musiqued.8": musiqued_page, "musiqued.toml.5": toml_page}


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    target.mkdir(parents=True, exist_ok=True)
    for name, make in PAGES.items():
        (target / name).write_text(make(), encoding="utf-8")


if __name__ == "__main__":
    main()
