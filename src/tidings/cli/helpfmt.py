"""How `tidings ... --help` names the value each option takes.

Typer 0.2x renders an option's Python annotation (`<bool>`, `<str>`, `<list[str]>`) and wraps
required arguments in braces in the usage line. People read a CLI's help, not its source: a flag
shows no value at all, an option shows its metavar when it has one (URL, TIME, SECONDS, ...) and
otherwise the names click always used (TEXT, INTEGER, NUMBER), and the usage line names
arguments as `ID` / `[FILE]`. `install()` puts these in place on typer's parameter classes; on a
typer without these hooks it does nothing and typer's own rendering stays.
"""

from __future__ import annotations

import types
from typing import Any, get_args, get_origin

LABELS: dict[Any, str] = {str: "TEXT", int: "INTEGER", float: "NUMBER"}


def type_label(annotation: Any) -> str | None:
    """The value name for an annotation: None for a flag; a list or an optional is named by
    its element (a repeatable option says so in its help)."""
    if annotation is bool:
        return None
    origin = get_origin(annotation)
    if origin in (list, tuple) or origin is types.UnionType:
        for arg in get_args(annotation):
            if arg is not type(None):
                return type_label(arg)
    return LABELS.get(annotation, "TEXT")


def _option_type(param: Any, ctx: Any) -> str | None:
    if param.metavar is not None:
        return str(param.metavar) or None
    return type_label(param.type_descriptor.annotation)


def _argument_type(param: Any, ctx: Any) -> str | None:
    return None  # the argument's name (its metavar) already says what it is


def _argument_usage(param: Any) -> str:
    name = str(param.metavar) if param.metavar is not None else param.name.upper()
    if not param.required:
        name = f"[{name}]"
    return name + ("..." if param.nargs != 1 else "")


def install() -> None:
    try:
        from typer.core import TyperArgument, TyperOption
    except ImportError:  # pragma: no cover - a typer without these classes
        return
    if not hasattr(TyperOption, "display_type_rich"):  # pragma: no cover - older typer
        return
    TyperOption.display_type_rich = _option_type  # type: ignore[method-assign,assignment]
    TyperArgument.display_type_rich = _argument_type  # type: ignore[method-assign,assignment]
    if hasattr(TyperArgument, "_usage_display_name"):
        TyperArgument._usage_display_name = _argument_usage  # type: ignore[method-assign,assignment]
