"""Markdown tables, written one way by every report: the paper tables, sweep summaries, tree
importances and the benchmark scripts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def table(header: Sequence[object], rows: Iterable[Sequence[object]]) -> list[str]:
    """The lines of a GitHub-flavoured markdown table; every row as long as the header."""
    head = [str(h) for h in header]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        if len(row) != len(head):
            raise ValueError(f"a row of {len(row)} cells under a header of {len(head)}: {list(row)}")
        lines.append("| " + " | ".join(map(str, row)) + " |")
    return lines
