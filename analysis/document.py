"""The report as a document: a list of `Section`s rendered the same way as Markdown and as
self-contained HTML (plots embedded as base64 PNG). Both reports, the strategy comparison
(`analysis.report`) and the experiments (`analysis.experiments_report`), are built of these."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd


def markdown_table(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, row in df.iterrows():
        cells = (str(v).replace("|", "\\|").replace("\n", " ") for v in row)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def html_table(df: pd.DataFrame, cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(str(v)).replace(chr(10), '<br>')}</td>" for v in row)
        + "</tr>"
        for _, row in df.iterrows()
    )
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 0 auto;
       max-width: 1240px; padding: 16px 20px 40px; color: #1b1b1b; line-height: 1.45; }
h1 { font-size: 26px; margin-bottom: 4px; } h2 { font-size: 20px; margin-top: 34px;
     border-bottom: 1px solid #ddd; padding-bottom: 4px; }
table { border-collapse: collapse; margin: 10px 0; font-size: 14px; width: 100%; }
th, td { border: 1px solid #d4d4d4; padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #f2f4f7; } tr:nth-child(even) td { background: #fafafa; }
table.figures td:first-child, table.ratios td:first-child { width: 24%; }
.warn { background: #fff4ce; border: 1px solid #e0c060; padding: 8px 12px; border-radius: 4px; }
.note { color: #555; font-size: 14px; } .plot { margin: 14px 0 22px; }
.plot img { width: 100%; max-width: 1200px; height: auto; border: 1px solid #eee; }
code { background: #f2f2f2; padding: 1px 4px; border-radius: 3px; }
.floor { background: #f2f4f7; border-left: 4px solid #6b6b6b; padding: 6px 12px; }
h3 { font-size: 17px; margin-top: 18px; }
"""


@dataclass(frozen=True)
class Section:
    """One part of the report, rendered the same way as Markdown and as HTML.

    `banner`: a warning line with no heading (a mismatched or partial comparison). A `plot` is
    HTML only (Markdown points to report.html). `level` is the HTML heading level; Markdown keeps
    every section at `##`.
    """

    title: str = ""
    note: str = ""
    table: pd.DataFrame | None = None
    table_class: str = ""
    bullets: tuple[str, ...] = ()
    plot: bytes | None = None
    is_plot: bool = False
    banner: bool = False
    level: int = 2
    css: str = "note"  # the note's class in HTML: note, warn or floor


def to_markdown(title: str, parts: Sequence[Section]) -> str:
    md = [f"# {title}", ""]
    for part in parts:
        if part.is_plot:
            continue
        if part.banner:
            md += [f"> **{part.note}**", ""]
            continue
        if part.title:
            md += [f"## {part.title}", ""]
        if part.note:
            md += [part.note, ""]
        if part.table is not None:
            md += [markdown_table(part.table), ""]
        if part.bullets:
            md += [f"- {line}" for line in part.bullets] + [""]
    md += ["Plots are in report.html.", ""]
    return "\n".join(md)


def to_html(title: str, parts: Sequence[Section]) -> str:
    esc = html.escape
    h = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
    ]
    for part in parts:
        if part.banner:
            h.append(f"<p class='warn'><b>{esc(part.note)}</b></p>")
            continue
        if part.title:
            h.append(f"<h{part.level}>{esc(part.title)}</h{part.level}>")
        if part.is_plot:
            h.append("<div class='plot'>")
            if part.plot is not None:
                data = base64.b64encode(part.plot).decode("ascii")
                h.append(f"<img alt='{esc(part.title)}' src='data:image/png;base64,{data}'>")
            h.append(f"<p class='note'>{esc(part.note)}</p></div>")
            continue
        if part.note:
            h.append(f"<p class='{part.css}'>{esc(part.note)}</p>")
        if part.table is not None:
            h.append(html_table(part.table, part.table_class))
        if part.bullets:
            css = " class='verdict'" if part.title == "Verdict" else ""
            h.append(f"<ul{css}>" + "".join(f"<li>{esc(b)}</li>" for b in part.bullets) + "</ul>")
    h.append("</body></html>")
    return "\n".join(h)
