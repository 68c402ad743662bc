"""The pieces every view is built from: numbers as a table shows them, a table from a header and
rows, lines, and the console that prints them (``reshape.report.views`` composes them).

Nothing here prints: a view returns what a caller (the command line) prints. rich is imported
inside the functions: the command line imports this module before it parses anything.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Collection, Iterable, Sequence

if TYPE_CHECKING:
    from rich.console import Console, Group, RenderableType
    from rich.table import Table
    from rich.text import Text

    from ..cost import CostEstimate


def human(n: float) -> str:
    """1234567 -> '1.23M': a table column stays narrow and still tells magnitudes apart."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:g}"


def human_or_dash(n: float | None) -> str:
    """``human``, or '-' where there is no number (a block that cannot be merged)."""
    return "-" if n is None else human(n)


def pct(part: float, whole: float) -> str:
    """A share of a total with one decimal ('12.5%'), '-' of nothing: what each stage or layer holds."""
    return f"{100 * part / whole:.1f}%" if whole else "-"


def percent(mean: float | None, se: float | None = None) -> str:
    """A top-1 fraction as a percentage, with its standard error when it has one ('-' when not scored)."""
    if mean is None:
        return "-"
    return f"{100 * mean:.2f}%" + ("" if se is None else f" ± {100 * se:.2f}")


def cost_cells(cost: CostEstimate) -> tuple[str, str]:
    """The online seconds and bytes of a PI estimate, or 'no estimate' where its profile prices no op."""
    if cost.unpriced:
        return "no estimate", "no estimate"
    return f"{cost.online_s:.2f}s", human(cost.total_bytes) + "B"


def table(title: str | None, header: Sequence[str], rows: Iterable[Sequence[str]] = (), *,
          left: int | Collection[str] = 1, no_wrap: bool | Collection[str] = False, overflow: str = "ellipsis",
          title_justify: str = "left", **options: Any) -> Table:
    """A rich table from a header and rows: names left (the first ``left`` columns, or those named),
    numbers right, so every command's tables line up alike."""
    from rich.table import Table

    view = Table(title=title, title_justify=title_justify, **options)  # type: ignore[arg-type]
    for i, name in enumerate(header):
        at_left = i < left if isinstance(left, int) else name in left
        view.add_column(name, justify="left" if at_left else "right", overflow=overflow,  # type: ignore[arg-type]
                        no_wrap=no_wrap if isinstance(no_wrap, bool) else name in no_wrap)
    for row in rows:
        view.add_row(*row)
    return view


def plain(line: str) -> Text:
    """A line printed as written: no numbers or paths coloured (rich's highlighting is for tables' notes)."""
    from rich.text import Text

    return Text.from_markup(line)


def styled(line: str, style: str) -> RenderableType:
    """A line in one style (a warning in yellow), highlighted as any other line."""
    from rich.styled import Styled

    return Styled(line, style)


def group(*parts: RenderableType | None) -> Group:
    """Tables and lines printed one below the other, as one renderable (``None`` parts left out)."""
    from rich.console import Group

    return Group(*(part for part in parts if part is not None))


def stdout_console(pipe_width: int | None = 400) -> Console:
    """A rich console for stdout; a pipe or a log gets tables ``pipe_width`` wide (None: rich's 80),
    whole rather than squeezed to 80 columns."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal or pipe_width is None else Console(width=pipe_width)
