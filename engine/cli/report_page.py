"""The page every HTML report is poured into: one self-contained file that opens offline.

plotly.js is inlined once in the page head and every figure is rendered as SVG (plain ``scatter``
and ``bar`` traces, never WebGL), so a report needs no network, no CDN and no server: it can be
mailed, attached to an incident or opened from a CI artefact. A Content-Security-Policy in the
page forbids every request (no fetch, no image, no font from anywhere), so a report that tried
would fail loudly in the browser's console rather than leak anything.

plotly is imported here, and this module is imported only when a report is asked for, so
``canary-engine --help`` stays fast (benchmarks/bench_startup.py).
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from analysis import redact

if TYPE_CHECKING:
    import plotly.graph_objects as go

#: Inline script and style only; nothing may be loaded from anywhere (images: plotly's own
#: data: URLs for its mode-bar "download as PNG").
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:; connect-src 'none'; form-action 'none'; "
    "base-uri 'none'"
)

#: Plotly's options for every figure: no plotly logo link; "download as PNG" stays (offline).
PLOT_CONFIG: dict[str, Any] = {"displaylogo": False, "responsive": True}

#: Hover text is wrapped at this many characters so a judge's sentence fits a phone's screen
#: (390 px wide: a 90-character line ran off both sides of the label).
HOVER_WIDTH = 45

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
       max-width: 1200px; padding: 1em 1.5em; color: #1f2933; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; overflow-wrap: anywhere; }
.sub, .best, .why p, .why li { overflow-wrap: anywhere; }
h2 { font-size: 1.15em; margin: 1.6em 0 0.3em; }
.sub { color: #52606d; margin-top: 0; }
.badge { display: inline-block; padding: 0.1em 0.6em; border-radius: 0.8em; color: white;
         font-weight: 600; }
.promoted { background: #2f855a; } .rolled_back { background: #c53030; }
.undecided { background: #b7791f; }
.warning { background: #fffbea; border-left: 4px solid #b7791f; padding: 0.4em 0.8em;
           margin: 0.3em 0; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
th, td { border-bottom: 1px solid #e4e7eb; padding: 0.25em 0.7em; text-align: left;
         vertical-align: top; }
th { background: #f5f7fa; }
.scroll { overflow-x: auto; max-width: 100%; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.Warning td { color: #c53030; }
tr.over-limit td { color: #52606d; }  /* 6.4:1 on white; "over limit" says it in words */
.plot { min-height: 200px; }
.note { color: #52606d; font-style: italic; }
.best { font-size: 1.05em; margin: 0.6em 0; }
td.wrong { font-weight: 700; color: #7b341e; background: #fde8d7; }
td.outcome { text-align: center; }
.why { border-left: 4px solid #52606d; padding: 0.1em 0.9em 0.3em; margin: 0.8em 0;
       background: #f5f7fa; }
.why h2 { margin-top: 0.4em; }
.why ul { margin: 0.3em 0; padding-left: 1.2em; }
footer { color: #616e7c; font-size: 0.8em; margin-top: 2em; }
"""


def plotly() -> tuple[Any, Any]:
    """``plotly.graph_objects`` and ``plotly.io``, imported on first use (a runtime dependency)."""
    import plotly.graph_objects as go
    import plotly.io as pio

    return go, pio


def escape(text: str) -> str:
    """Text safe in HTML and in plotly's hover labels (which read a few HTML tags and entities),
    with any credential masked (analysis.redact)."""
    return html.escape(redact(text), quote=True)


def plot_text(text: str) -> str:
    """Text for plotly to draw (axis titles, hover labels, category labels), with any credential
    masked. plotly reads a few HTML tags in such text (``<b>``, ``<a href>``, ...), so ``&``,
    ``<`` and ``>`` are escaped and no tag can open; quotes are left as they are, because plotly
    decodes only a few named entities and drew ``&quot;`` literally (outside a tag a quote is
    plain text)."""
    return html.escape(redact(text), quote=False)


def hover_lines(lines: Iterable[str]) -> str:
    """Lines of a hover label: each redacted whole, then wrapped, each piece escaped for plotly
    (``plot_text``), joined with plotly's ``<br>``. (Redacting the wrapped pieces let a break
    between ``Bearer`` and its token, or inside ``user:password@``, hide it from the patterns.)"""
    out: list[str] = []
    for line in lines:
        wrapped = textwrap.wrap(redact(line), HOVER_WIDTH) or [""]
        out.extend(html.escape(part, quote=False) for part in wrapped)  # plot_text, redacted once
    return "<br>".join(out)


def figure_div(fig: go.Figure, div_id: str, *, height: int) -> str:
    """One figure as a ``<div>`` plus its ``Plotly.newPlot`` script (plotly.js is in the head)."""
    _, pio = plotly()
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin={"l": 70, "r": 30, "t": 50, "b": 50},
        hoverlabel={"align": "left"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        showlegend=True,  # also for one trace: the legend names what the marks are
    )
    markup: str = pio.to_html(
        fig,
        include_plotlyjs=False,
        full_html=False,
        div_id=div_id,
        config=PLOT_CONFIG,
        default_width="100%",
        default_height=f"{height}px",
    )
    return f'<div class="plot" id="{div_id}-section">{markup}</div>'


def table(
    headers: Sequence[str],
    rows: Iterable[tuple[Sequence[str | tuple[str, str]], str]],
    *,
    numeric: set[int],
    table_id: str = "",
) -> str:
    """An HTML table of plain-text cells (escaped here). Each row is (cells, CSS class or "");
    a cell is its text or (text, CSS class); the columns in ``numeric`` align right;
    ``table_id`` names the table for links and tests."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for cells, css in rows:
        tds = "".join(_cell(c, i in numeric) for i, c in enumerate(cells))
        body.append(f'<tr class="{escape(css)}">{tds}</tr>' if css else f"<tr>{tds}</tr>")
    ident = f' id="{escape(table_id)}"' if table_id else ""
    # in a scrolling box: a wide table scrolls on a phone instead of widening the whole page
    return (
        f"<div class='scroll'><table{ident}><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _cell(cell: str | tuple[str, str], numeric: bool) -> str:
    text, css = (cell, "") if isinstance(cell, str) else cell
    classes = " ".join(c for c in ("num" if numeric else "", css) if c)
    return (
        f'<td class="{escape(classes)}">{escape(text)}</td>'
        if classes
        else f"<td>{escape(text)}</td>"
    )


def page(title: str, body: Sequence[str]) -> str:
    """The whole report: head with the CSP, the style and plotly.js inline, then ``body`` (HTML
    fragments built with ``escape``)."""
    from plotly.offline import get_plotlyjs

    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">\n'
        "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n"
        # plotly.js, inlined: the page must open offline (issue 8). PlotlyConfig keeps plotly
        # from looking for MathJax.
        "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>\n"
        f"<script>{get_plotlyjs()}</script>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n<footer>canary-engine report · self-contained: opens offline</footer>\n"
        "</body>\n</html>\n"
    )
