"""What the console's pages are handed by the assembler (`tidings.web`): the settings and the
service layer's `Deps`. Pages call `tidings.services` operations with them and the viewer's
actor, like the API's routes; the console never touches the store."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from tidings.config import Settings
from tidings.services.deps import Deps


@dataclass(frozen=True)
class ConsoleContext:
    settings: Settings
    deps: Deps


def console_context(request: Request) -> ConsoleContext:
    context: ConsoleContext = request.app.state.console
    return context
