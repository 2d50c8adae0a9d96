"""User text made safe for where it goes: one path sanitiser, one escaper per output format.

A spec's ``name:``, its layer names, a checkpoint's class names and an image folder's
class-folder names come from whoever wrote the file. Each place such text leaves archspec
goes through exactly one function here:

========================  =====================================================
``slug(name)``            a path component: the run directory ``runs/<slug>-…``
``terminal(text)``        a terminal line (control, ESC/OSC, bidi characters escaped)
``markdown(text)``        Markdown text (``--markdown``, ``summary``): no raw HTML
``markdown_code(text)``   a Markdown code span
``xml(text)``             XML/SVG character data and attribute values
``dot(text)``             a double-quoted Graphviz DOT string (its SVG is well-formed XML)
``mermaid(text)``         a quoted Mermaid label
========================  =====================================================

Every format escaper first makes the text one line (whitespace runs, line breaks
included, become one space) and terminal-safe, so a control character is shown as
``\\x1b``/``\\u202e`` in every format rather than dropped. The bottom
of the package: pure Python, imports nothing of archspec, importable from every stage.
"""

from __future__ import annotations

import re
import unicodedata

# Bidirectional controls reorder what a terminal shows ("Trojan Source", CVE-2021-42574).
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _unsafe(ch: str) -> bool:
    code = ord(ch)
    noncharacter = (code & 0xFFFE) == 0xFFFE or 0xFDD0 <= code <= 0xFDEF  # not XML either
    return unicodedata.category(ch) in ("Cc", "Zl", "Zp", "Cs") or ch in _BIDI or noncharacter


def _escape(ch: str) -> str:
    escaped = repr(ch)[1:-1]  # '\n', '\x1b', '\u202e'
    return escaped if escaped != ch else f"\\u{ord(ch):04x}"


def terminal(text: str) -> str:
    """``text`` safe to print on one terminal line: control characters (line breaks, ESC,
    OSC, NUL), line/paragraph separators, lone surrogates, Unicode noncharacters
    (U+FFFE…) and bidi controls become
    visible ``\\x..``/``\\u....`` escapes.

    >>> terminal("unknown key 'a\\nb\\x1b[2J'")
    "unknown key 'a\\\\nb\\\\x1b[2J'"
    """
    if text.isprintable():
        return text
    return "".join(_escape(ch) if _unsafe(ch) else ch for ch in text)


def _line(text: str) -> str:
    """One line: runs of whitespace (line breaks, tabs) become one space, then every
    other unsafe character a visible escape."""
    return terminal(" ".join(text.split()))


# ------------------------------------------------------------------------------ paths
SLUG_MAX = 64  # characters (ASCII: bytes) of a name in a path; far below NAME_MAX 255
_NOT_SLUG = re.compile(r"[^A-Za-z0-9._-]+")
_RESERVED = frozenset(  # names Windows refuses as files, whatever the extension
    ["con", "prn", "aux", "nul"] + [f"{p}{i}" for p in ("com", "lpt") for i in range(1, 10)]
)


def slug(name: str, fallback: str = "run") -> str:
    """``name`` as one safe path component: ASCII letters, digits, ``.``, ``_``, ``-``;
    every other run of characters (``/``, ``\\``, NUL, spaces, non-ASCII) becomes one
    ``-``; no leading dot or dash (never ``.``, ``..`` or a hidden file), at most
    ``SLUG_MAX`` characters; ``fallback`` when nothing is left.

    >>> slug("../../escaped"), slug("/etc/passwd"), slug("mnist cnn"), slug("\\0"), slug("é")
    ('escaped', 'etc-passwd', 'mnist-cnn', 'run', 'run')
    """
    text = _NOT_SLUG.sub("-", name)
    text = text.lstrip(".-")[:SLUG_MAX].rstrip(".-")
    if not text:
        return fallback
    if text.split(".")[0].lower() in _RESERVED:
        text = f"{fallback}-{text}"
    return text


# ----------------------------------------------------------------------------- Markdown
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")  # inline: emphasis, links, code, tables
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}


def _html(text: str) -> str:
    return "".join(_HTML.get(ch, ch) for ch in text)


def markdown(text: str) -> str:
    """``text`` as literal Markdown text on one line (a table cell, a title): HTML's
    ``& < > "`` become entities (no raw HTML passes), Markdown's punctuation is
    backslash-escaped (no emphasis, links, code or table breaks), control characters escaped.

    >>> markdown("<img src=x onerror=alert(1)> *a* | b")
    '&lt;img src=x onerror=alert(1)&gt; \\\\*a\\\\* \\\\| b'
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", _html(_line(text)))


def markdown_code(text: str) -> str:
    """``text`` as one Markdown code span: the fence is longer than any run of backticks
    inside it (CommonMark); HTML inside a code span is shown, never rendered.

    >>> markdown_code("conv 3×3"), markdown_code("a`b")
    ('`conv 3×3`', '`` a`b ``')
    """
    line = _line(text)
    runs = [len(run) for run in re.findall(r"`+", line)]
    if not runs:
        return f"`{line}`"
    fence = "`" * (max(runs) + 1)
    return f"{fence} {line} {fence}"


# ---------------------------------------------------------------------------------- XML
def xml(text: str) -> str:
    """``text`` as XML character data or a quoted attribute value: ``& < > " '`` become
    entities and characters XML 1.0 forbids (C0 controls, lone surrogates, U+FFFE/FFFF)
    become visible escapes, so the document stays well-formed.

    >>> xml('a<b & "c"\\x01')
    'a&lt;b &amp; &quot;c&quot;\\\\x01'
    """
    return _html(_line(text)).replace("'", "&#39;")


# ---------------------------------------------------------------------------------- DOT
def dot(text: str) -> str:
    r"""``text`` as a double-quoted DOT string on one line: backslashes and quotes escaped
    (so Graphviz's ``\N``/``\G``/``\l`` label escapes cannot fire), control characters
    shown as escapes (so Graphviz's SVG output is well-formed XML).

    >>> print(dot('a "b" \\N\x07'))
    "a \"b\" \\N\\x07"
    """
    line = _line(text)
    return '"' + line.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ------------------------------------------------------------------------------ Mermaid
_MERMAID = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;", "`": "#96;"}


def mermaid(text: str) -> str:
    """``text`` safe inside a quoted Mermaid label: entity codes for ``# " < > & ````` and
    control characters escaped, on one line.

    >>> mermaid('a "b" <c> #1')
    'a #quot;b#quot; #lt;c#gt; #35;1'
    """
    line = _line(text)
    return "".join(_MERMAID.get(ch, ch) for ch in line)
