"""README's table: each reference network's count under each tool's convention, archspec's
static number beside what the tool measures on the compiled network (full input size).

    python bench/conventions_table.py            # prints the Markdown table
    python bench/conventions_table.py vit_b_16   # only these networks' rows
"""

from __future__ import annotations

import sys

from common import REPO

sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from test_conventions import NETWORKS, TOOLS, measure

import archspec
from archspec.shapes import counting


def main() -> None:
    names = sys.argv[1:] or list(NETWORKS)  # the tested networks, here at their full size
    head = "| network | archspec MACs | " + " | ".join(TOOLS) + " |"
    lines = [head, "|" + "---|" * (len(TOOLS) + 2)]
    for name in names:
        plan = archspec.load(REPO / "specs" / f"{name}.yaml").plan()
        cells = [f"`{name}`", f"{counting.total(plan):,}"]
        for tool in TOOLS:
            static, measured = counting.total(plan, tool), measure(plan, tool)
            mark = "" if static == measured else " ✗"
            cells.append(f"{static:,} / {measured:,}{mark}")
        lines.append("| " + " | ".join(cells) + " |")
        print(f"{name} done", file=sys.stderr, flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
