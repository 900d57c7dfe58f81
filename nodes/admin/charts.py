"""Charts drawn on the server as SVG (§12): no script, no inline style (colours are classes of
nodes/static/nodes/fleet.css, which read the admin's CSS variables, so the light and dark themes
both work). Each chart carries its numbers in <title>s; the page prints them as text beside it."""

from collections.abc import Mapping, Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

BAR_WIDTH = 240
BAR_HEIGHT = 12


def _svg(width: int, height: int, label: str, body: SafeString, css: str) -> SafeString:
    return format_html(
        '<svg class="nf-chart {}" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="{}">'
        "<title>{}</title>{}</svg>",
        css,
        width,
        height,
        width,
        height,
        label,
        label,
        body,
    )


def level(used: int, allocatable: int) -> str:
    """ok, high (from 85 %) or over (past allocatable): the bars' and tiles' colour class."""
    if used > allocatable:
        return "over"
    return "high" if allocatable and used * 100 >= allocatable * 85 else "ok"


def capacity_bar(used: int, allocatable: int, physical: int, label: str) -> SafeString:
    """One bar: the physical size as the track, allocatable as a band on it (it may pass the
    physical size with an overcommit ratio), used as the fill; a tick at the physical size."""
    scale = max(used, allocatable, physical, 1)

    def width(amount: int) -> float:
        return round(amount * BAR_WIDTH / scale, 2)

    body = format_html(
        '<rect class="nf-c-track" x="0" y="2" width="{}" height="{}" rx="2"><title>physical</title></rect>'
        '<rect class="nf-c-allocatable" x="0" y="2" width="{}" height="{}" rx="2"><title>allocatable</title></rect>'
        '<rect class="nf-c-used nf-c-{}" x="0" y="2" width="{}" height="{}" rx="2"><title>used</title></rect>'
        '<line class="nf-c-tick" x1="{}" x2="{}" y1="0" y2="{}"></line>',
        width(physical),
        BAR_HEIGHT,
        width(allocatable),
        BAR_HEIGHT,
        level(used, allocatable),
        width(used),
        BAR_HEIGHT,
        width(physical),
        width(physical),
        BAR_HEIGHT + 4,
    )
    return _svg(BAR_WIDTH, BAR_HEIGHT + 4, label, body, "nf-capacity-bar")


def stacked_columns(
    columns: Sequence[Mapping], series: Sequence[tuple[str, str]], *, label: str, key: str, height: int = 90
) -> SafeString:
    """Stacked columns, one per entry of `columns` (series: (field, css class) bottom up); each
    column's <title> holds its numbers, e.g. "14:00 — succeeded 3, failed 1, rolled back 0"."""
    step, gap = 14, 3
    top = max((sum(column[field] for field, _ in series) for column in columns), default=0) or 1
    parts = []
    for index, column in enumerate(columns):
        x, y = index * step, height
        text = ", ".join(f"{field.replace('_', ' ')} {column[field]}" for field, _ in series)
        rects = []
        for field, css in series:
            h = round(column[field] * (height - 2) / top, 2)
            if h:
                y -= h
                rect = '<rect class="{}" x="{}" y="{}" width="{}" height="{}"></rect>'
                rects.append(format_html(rect, css, x, round(y, 2), step - gap, h))
        parts.append(
            format_html(
                '<g class="nf-c-column"><title>{} — {}</title>'
                '<rect class="nf-c-hit" x="{}" y="0" width="{}" height="{}"></rect>{}</g>',
                column[key],
                text,
                x,
                step - gap,
                height,
                mark_safe("".join(rects)),  # each part built by format_html
            )
        )
    body = format_html(
        '<line class="nf-c-axis" x1="0" x2="{}" y1="{}" y2="{}"></line>{}',
        len(columns) * step,
        height + 0.5,
        height + 0.5,
        mark_safe("".join(parts)),
    )
    return _svg(max(len(columns) * step, step), height + 1, label, body, "nf-columns")


def histogram(counts: Sequence[int], labels: Sequence[str], *, label: str, height: int = 60) -> SafeString:
    """Hosts per utilisation bucket: one column per bucket, coloured by its level."""
    step, gap = 22, 4
    top = max(counts, default=0) or 1
    columns = []
    for index, (count, name) in enumerate(zip(counts, labels, strict=True)):
        h = round(count * (height - 2) / top, 2)
        css = "over" if index == len(counts) - 1 else "high" if index >= 8 else "ok"
        columns.append(
            format_html(
                '<g><title>{}: {} host{}</title><rect class="nf-c-hit" x="{}" y="0" width="{}" height="{}"></rect>'
                '<rect class="nf-c-used nf-c-{}" x="{}" y="{}" width="{}" height="{}"></rect></g>',
                name,
                count,
                "" if count == 1 else "s",
                index * step,
                step - gap,
                height,
                css,
                index * step,
                height - h,
                step - gap,
                h,
            )
        )
    body = format_html_join("", "{}", ((column,) for column in columns))
    return _svg(len(counts) * step, height, label, body, "nf-histogram")
