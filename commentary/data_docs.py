"""Great Expectations Data Docs that render with no network.

GX writes pages that load Bootstrap, jQuery, bootstrap-table and fonts from CDNs, and fills the
index's tables with JavaScript from them: offline the index is blank. ``make_offline`` rewrites a
site in place: remote scripts, stylesheets and images are dropped, a small stylesheet is inlined,
and the index's tables are written out as plain HTML rows from the data GX embedded for its script.
"""
from __future__ import annotations

import ast
import html
import re
from pathlib import Path

REMOTE_SCRIPT = re.compile(r"""<script[^>]*\bsrc=["']https?://[^>]*>\s*</script>""", re.I)
REMOTE_LINK = re.compile(r"""<link[^>]*\bhref=["']https?://[^>]*>""", re.I)
REMOTE_IMAGE = re.compile(r"""<img[^>]*\bsrc=["']https?://[^>]*>""", re.I)
#: ``$('#ID').bootstrapTable(Object.assign({columns: [...], data: [...], ...``: the table GX fills in the browser.
FILLED_TABLE = re.compile(r"\$\('#(?P<id>[\w-]+)'\)\.bootstrapTable\(\s*Object\.assign\(\s*\{\s*"
                          r"columns: (?P<columns>\[.*?\]),\s*data: (?P<data>\[.*?\]),\s*toolbar:", re.S)
STYLE = """<style>
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 70em; }
table { border-collapse: collapse; margin: .5em 0 1em; }
th, td { border: 1px solid #bbb; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #eee; }
td.ge-success { background: #2e7d32; color: #fff; }
td.ge-failed { background: #c62828; color: #fff; }
td.ge-success a, td.ge-failed a { color: #fff; }
.cooltip .top, .tooltip, .modal, button, .ge-index-page-table-validation-links-item { display: none; }
</style>
"""


def make_offline(site: Path) -> None:
    """Rewrite every page of the Data Docs site under ``site`` so that it renders without a network."""
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        text = REMOTE_SCRIPT.sub("", text)
        text = REMOTE_LINK.sub("", text)
        text = REMOTE_IMAGE.sub("", text)
        for match in FILLED_TABLE.finditer(text):
            rows = _rows(ast.literal_eval(match["columns"]), ast.literal_eval(match["data"]))
            text = re.sub(rf'(<table\s+id="{match["id"]}"[^>]*>)\s*</table>', lambda m, rows=rows: m[1] + rows + "</table>", text)
        if "<style>\nbody { font-family" not in text:
            text = text.replace("</head>", STYLE + "</head>", 1)
        page.write_text(text, encoding="utf-8")


def _rows(columns: list[dict], data: list[dict]) -> str:
    """The header and one row per record; a record's page (``_table_row_link_path``) is linked from its first cell."""
    head = "".join(f"<th>{html.escape(c.get('title', c['field']))}</th>" for c in columns)
    body = []
    for record in data:
        cells = []
        for n, column in enumerate(columns):
            field = column["field"]
            value = record.get(f"_{field}_text") or record.get(field, "")  # GX's cells are HTML, its _text values plain
            text = html.escape(str(value)) if f"_{field}_text" in record else str(value)
            if n == 0 and record.get("_table_row_link_path"):
                text = f'<a href="{html.escape(record["_table_row_link_path"])}">{text}</a>'
            status = {"Success": ' class="ge-success"', "Failed": ' class="ge-failed"'}.get(str(value), "")
            cells.append(f"<td{status}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody>"
