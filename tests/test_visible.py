"""The one function that makes untrusted text safe to show, the exact-but-inert JSON, and the
rule that every printer goes through them."""

from __future__ import annotations

import ast
import json
import unicodedata

from musiquectl.text import json_text, visible
from tests.support import ROOT

BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def test_every_control_and_bidi_character_becomes_visible() -> None:
    """C0 and DEL become control pictures, C1, bidi controls, line/paragraph separators and
    lone surrogates ``<U+XXXX>``: nothing a terminal acts on is left."""
    assert visible("\x1b[31mRED\x1b[0m") == "␛[31mRED␛[0m"
    assert visible("a\tb\nc\rd\x07\x00\x7f") == "a␉b␊c␍d␇␀␡"
    assert visible("\u009b31m\u0085") == "<U+009B>31m<U+0085>"
    assert visible("\u202eevil\u202c\u2066x\u2069") == "<U+202E>evil<U+202C><U+2066>x<U+2069>"
    assert visible("\u2028\u2029\ud800") == "<U+2028><U+2029><U+D800>"
    for code in range(0x110000):
        char = chr(code)
        category = unicodedata.category(char)
        if category in ("Cc", "Cs") or char in BIDI + "\u2028\u2029":
            assert visible(char) != char, hex(code)


def test_ordinary_text_is_left_alone() -> None:
    """Accents, CJK, emoji (with their joiners and variation selectors), markup-like
    brackets and backslashes are shown exactly as they are."""
    for text in (
        "Sigur Rós — Ágætis byrjun",
        "坂本龍一",
        "👩\u200d👩\u200d👧 ❤\ufe0f",
        "[dunkelbunt] [/] [bold red]x[/bold red] :thumbs_up: C:\\music",
        "Ø̸ combining",
    ):
        assert visible(text) == text


def test_json_text_is_exact_data_with_nothing_raw() -> None:
    """``--json`` output decodes to the very same strings, yet carries no C1, DEL, bidi or
    separator character raw (JSON escapes them, as it already does C0)."""
    every = "".join(chr(code) for code in range(0x3000)) + BIDI + "\ufeff\U0001f600"
    document = {"name": every, "list": [every, 1, None]}
    text = json_text(document, indent=2)
    assert json.loads(text) == document
    for char in text:
        assert not (unicodedata.category(char) == "Cc" and char != "\n"), hex(ord(char))
        assert char not in BIDI + "\u2028\u2029"
    assert json.loads(json_text("\ud800")) == "\ud800"  # a lone surrogate is not a crash


PRINTERS = {
    ("click", "echo"),
    ("click", "secho"),
    ("click", "clear"),
    ("sys", "stdout"),
    ("sys", "stderr"),
}


def _printing(source: str) -> list[str]:
    """Where ``source`` writes to the terminal itself (line: what)."""
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "print"
        ):
            found.append(f"{line}: print")
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and (node.value.id, node.attr) in PRINTERS
            and not _descriptor_only(node, tree)
        ):
            found.append(f"{line}: {node.value.id}.{node.attr}")
        if isinstance(node, ast.ImportFrom | ast.Import):
            modules = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [alias.name for alias in node.names]
            )
            if any(module.split(".")[0] == "rich" for module in modules):
                found.append(f"{line}: rich")
    return found


def _descriptor_only(node: ast.Attribute, tree: ast.Module) -> bool:
    """``sys.stdout.fileno()``: the descriptor, for export's data or a broken pipe."""
    return any(
        isinstance(parent, ast.Attribute) and parent.value is node and parent.attr == "fileno"
        for parent in ast.walk(tree)
    )


def test_only_the_output_module_prints() -> None:
    """No module of musiquectl but ``output.py`` writes to the terminal (``click.echo``,
    ``print``, ``sys.stdout``/``sys.stderr``, rich): every human line goes through its
    ``visible``. (``export`` streams data through a file it opens on stdout's descriptor:
    data, not a display.)"""
    assert sorted(
        _printing(
            "import click, sys\nfrom rich.table import Table\nclick.echo(x)\nprint(x)\n"
            "sys.stderr.write(x)\nopen(sys.stdout.fileno())\n"
        )
    ) == ["2: rich", "3: click.echo", "4: print", "5: sys.stderr"]
    sources = sorted((ROOT / "musiquectl").rglob("*.py"))
    assert len(sources) > 10
    offenders = {
        str(path.relative_to(ROOT)): found
        for path in sources
        if path.name != "output.py" and (found := _printing(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}
