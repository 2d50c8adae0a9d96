"""One corpus of hostile names, shared by every test of a path sanitiser or an escaper
(tests/test_hostile2.py): spec ``name:`` values, layer names, class names, folder names."""

from __future__ import annotations

HOSTILE_NAMES: tuple[str, ...] = (
    "../../escaped",
    "/etc/passwd",
    "/tmp/archspec-absolute",
    "..",
    ".",
    ".hidden",
    "a/../../b",
    "C:\\Windows\\system32",
    "con",
    "nul.txt",
    "x" * 300,
    "é" * 200,
    "nul\0byte",
    "\0",
    "",
    " ",
    "line\nbreak\r\n",
    "tab\there",
    "\x1b[2J\x1b[31mred",  # ESC: clear the screen, colour
    "\x1b]0;title\x07",  # OSC: set the window title
    "\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\",  # OSC 8 hyperlink
    "\x9b31m",  # C1 CSI
    "bidi \u202eevil\u202c \u2066x\u2069",  # Trojan Source
    "\u2028separator\u2029",
    "\ufeffbom",
    "\ufffe\uffff",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "a & b; &amp; &#x3c;",
    "\"quoted\" 'single'",
    "[link](javascript:alert(1))",
    "*bold* _em_ ~strike~ `code` ``two``",
    "| pipe | table |",
    "# heading",
    "\\N \\G \\l \\\\",  # Graphviz label escapes
    "#35; %% mermaid --> end",
    "subgraph end",
    "]]><!--",
    "{{ template }} ${shell} $(rm -rf /)",
    "名前 🙂",
    "\x7f\x01\x02",
)
