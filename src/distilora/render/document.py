"""A tiny, format-neutral document model: the report is built once and rendered as Markdown (images linked) or
as one self-contained HTML file (images inlined)."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    caption: str = ""
    numeric: list[bool] | None = None
    """Which columns are right-aligned; default: all but the first."""

    def is_numeric(self, column: int) -> bool:
        return self.numeric[column] if self.numeric else column > 0


@dataclass
class Image:
    path: Path
    """Absolute path of the PNG file."""
    alt: str
    caption: str = ""


@dataclass
class Bullets:
    items: list[str]


Block = str | Table | Image | Bullets


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Document:
    title: str
    sections: list[Section] = field(default_factory=list)


CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 1200px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3em; }
h2 { margin-top: 2em; border-bottom: 1px solid #eee; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
caption { caption-side: top; text-align: left; font-style: italic; padding-bottom: .3em; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-style: italic; color: #555; }
.scroll { overflow-x: auto; }
"""


# ---- Markdown ----------------------------------------------------------------------------------------------
def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(table: Table) -> str:
    """The table in Markdown (GitHub's pipe tables), its caption in italics above it."""
    lines = [f"*{table.caption}*", ""] if table.caption else []
    lines.append("| " + " | ".join(map(_md_cell, table.headers)) + " |")
    lines.append("|" + "|".join("---:" if table.is_numeric(i) else "---" for i in range(len(table.headers))) + "|")
    lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in table.rows]
    return "\n".join(lines)


def render_markdown(document: Document, base_dir: Path) -> str:
    """Markdown with images linked relative to ``base_dir`` (the run directory)."""
    parts = [f"# {document.title}"]
    for section in document.sections:
        parts.append(f"## {section.title}")
        for block in section.blocks:
            if isinstance(block, Table):
                parts.append(markdown_table(block))
            elif isinstance(block, Image):
                link = block.path.relative_to(base_dir).as_posix()
                parts.append(f"![{block.alt}]({link})" + (f"\n\n*{block.caption}*" if block.caption else ""))
            elif isinstance(block, Bullets):
                parts.append("\n".join(f"- {item}" for item in block.items))
            else:
                parts.append(block)
    return "\n\n".join(parts) + "\n"


# ---- HTML --------------------------------------------------------------------------------------------------
def _html_table(table: Table) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in table.headers)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{esc(c)}</td>' if table.is_numeric(i) else f"<td>{esc(c)}</td>"
                         for i, c in enumerate(row)) + "</tr>"
        for row in table.rows
    )
    caption = f"<caption>{esc(table.caption)}</caption>" if table.caption else ""
    return f'<div class="scroll"><table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render_html(document: Document) -> str:
    """One HTML file with inline CSS and every image as a ``data:`` URI: it opens offline, alone."""
    esc = html.escape
    parts = [f"<h1>{esc(document.title)}</h1>"]
    for section in document.sections:
        parts.append(f"<h2>{esc(section.title)}</h2>")
        for block in section.blocks:
            if isinstance(block, Table):
                parts.append(_html_table(block))
            elif isinstance(block, Image):
                caption = f"<figcaption>{esc(block.caption)}</figcaption>" if block.caption else ""
                parts.append(f'<figure><img src="{data_uri(block.path)}" alt="{esc(block.alt)}">{caption}</figure>')
            elif isinstance(block, Bullets):
                parts.append("<ul>" + "".join(f"<li>{esc(item)}</li>" for item in block.items) + "</ul>")
            else:
                parts.append(f"<p>{esc(block)}</p>")
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{esc(document.title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")
