"""What the CLI commands print: tables that fit the terminal, key/value blocks, the raw JSON
answer (`--json`) or one field of it (`--field`), and the small cell formatters they share.

Tables carry ids people copy. When a table would be wider than the terminal (80 columns is the
case to serve), its id columns show the id's last characters, and a note on stderr says that
`--wide` shows them whole and `--json` gives everything; stdout stays the table.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tidings.cli.apiclient import UsageError

out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False)

SHORT_ID_TAIL = 6  # an id's random end; its start is its creation time, alike in one list
SHORT_ID_MIN = 12  # shorter ids (an organization's chosen one) are shown as they are
SHORT_CELL = 12  # a column whose cells are all this short and single words is never wrapped

STATUS_STYLE = {
    "succeeded": "green",
    "active": "green",
    "pending": "yellow",
    "held": "yellow",
    "queued": "yellow",
    "paused": "yellow",
    "failed": "red",
    "disabled": "red",
    "skipped": "dim",
}


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def emit(answer: Any, as_json: bool, field: str | None) -> bool:
    """Print `answer` as JSON (`--json`) or one top-level field of it, bare (`--field`, for
    shell variables); False when neither was asked for and the caller prints for people."""
    if field is not None:
        if not isinstance(answer, dict) or field not in answer:
            names = ", ".join(answer) if isinstance(answer, dict) else "none"
            raise UsageError(f"the answer has no field {field!r} (it has: {names})")
        value = answer[field]
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        sys.stdout.write(f"{text}\n")
        sys.stdout.flush()
        return True
    if as_json:
        print_json(answer)
        return True
    return False


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value) or "-"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False) if value else "-"
    return str(value)


def short_time(value: Any) -> str:
    """'2026-11-23T03:10:11.123456Z' -> '2026-11-23 03:10:11'."""
    if not isinstance(value, str):
        return cell(value)
    return value.replace("T", " ")[:19]


def styled_status(status: Any) -> str:
    text = cell(status)
    style = STATUS_STYLE.get(text)
    return f"[{style}]{text}[/{style}]" if style else text


def short_id(value: str) -> str:
    """`dlv_01kbg7w0tq3f9c2mr8xkq4h2za` -> `…q4h2za`: the column says what kind of id it is."""
    if len(value) < SHORT_ID_MIN:
        return value
    return f"…{value[-SHORT_ID_TAIL:]}"


def _cell_widths(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    widths = [len(name) for name in columns]
    for row in rows:
        for index, value in enumerate(row):
            widths[index] = max(widths[index], Text.from_markup(value).cell_len)
    return widths


def _table_width(widths: Sequence[int]) -> int:
    return sum(widths) + 3 * len(widths) + 1  # rich's borders and one space of padding a side


def _short_words(index: int, rows: Sequence[Sequence[str]]) -> bool:
    plain = [Text.from_markup(row[index]).plain for row in rows]
    return all(len(v) <= SHORT_CELL and " " not in v for v in plain)


def show_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    empty: str,
    ids: Collection[int] = (0,),
    wide: bool = False,
    title: str | None = None,
) -> None:
    """`rows` of rich-markup cells under `columns`; the `ids` columns are never wrapped and are
    shortened when the table would not fit the terminal (unless `wide`)."""
    if not rows:
        out.print(f"[dim]{empty}[/dim]")
        return
    needed = _table_width(_cell_widths(columns, rows))
    shorten = bool(ids) and not wide and needed > out.width
    if shorten:
        rows = [[short_id(v) if i in ids else v for i, v in enumerate(row)] for row in rows]
    table = Table(title=title, title_justify="left")
    for index, name in enumerate(columns):
        # ids and short words (statuses, codes) stay whole; long values wrap at spaces or fold
        keep = index in ids or _short_words(index, rows)
        table.add_column(name, no_wrap=keep, overflow="ellipsis" if keep else "fold")
    for row in rows:
        table.add_row(*row)
    # --wide: as wide as the table needs, wider than the terminal if need be (lines wrap)
    console = Console(highlight=False, width=max(out.width, needed)) if wide else out
    console.print(table)
    if shorten:
        err.print("[dim]ids shortened to fit: --wide shows them whole, --json gives all[/dim]")


def key_values(title: str, pairs: Iterable[tuple[str, Any]]) -> None:
    table = Table(title=title, show_header=False, box=None, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for name, value in pairs:
        table.add_row(name, value if isinstance(value, str) else cell(value))
    out.print(table)


def error_text(error: Any) -> str:
    if isinstance(error, dict):
        code = error.get("code", "error")
        return f"{code}: {error.get('message', '')}".strip()
    return cell(error)
