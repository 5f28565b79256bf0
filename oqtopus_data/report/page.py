"""The HTML page around the sections: header, contents, styles and the one inline script (plain JavaScript, no
library, nothing fetched). Without scripts every chart and table still reads; the script only adds sorting and
filtering to the job table and opens a job when its row is clicked."""

from __future__ import annotations

from collections.abc import Sequence

from oqtopus_data.report.formats import esc

# Latin first, then the CJK fonts of macOS, Windows and Linux, so job names in Japanese or Chinese render well.
FONTS = ('system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Hiragino Sans",'
         '"Hiragino Kaku Gothic ProN","Yu Gothic UI","Yu Gothic",Meiryo,"Noto Sans CJK JP","Noto Sans JP",'
         '"Source Han Sans JP","PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif')


def page(title: str, heading: str, lines: Sequence[str], sections: Sequence[tuple[str, str, str]]) -> str:
    """The whole HTML document: escaped title and header lines, a contents line, then (id, title, html) sections."""
    nav = " · ".join(f'<a href="#{esc(key)}">{esc(name)}</a>' for key, name, _ in sections)
    parts = "".join(f'<section id="{esc(key)}"><h2>{esc(name)}</h2>{body}</section>' for key, name, body in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body><header>"
            f"<h1>{esc(heading)}</h1>{''.join(f'<p>{esc(line)}</p>' for line in lines)}"
            f"<nav>{nav}</nav></header>{parts}<script>{SCRIPT}</script></body></html>\n")


CSS = """
body{font:14px/1.45 FONTS;color:#222;max-width:1180px;margin:0 auto;padding:16px 24px;background:#fff}
h1{font-size:24px;margin:8px 0 4px}h2{font-size:18px;border-bottom:2px solid #e4e4e4;padding-bottom:4px;margin-top:36px}
h3{font-size:14px;margin:0 0 2px;word-break:break-all}h3.circuit{margin-top:18px}header p{margin:2px 0;color:#555}
nav{margin:10px 0;font-size:13px}a{color:#3465a4}figure{margin:12px 0}svg{width:100%;height:auto;display:block}
svg text{font-family:inherit}figcaption,.note,.meta{color:#666;font-size:12.5px}
.empty{color:#8a5a00;background:#fff7e6;padding:8px 12px;border-radius:4px}
table{border-collapse:collapse;margin:10px 0;font-size:13px}th,td{padding:3px 10px;text-align:left;
border-bottom:1px solid #eee;vertical-align:top}th{background:#f6f6f6}td.num{text-align:right;
font-variant-numeric:tabular-nums}.tiles{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}.tile{background:#f4f7fb;
border-radius:6px;padding:8px 16px;min-width:120px}.tile b{display:block;font-size:20px}.tile span{color:#666;
font-size:12px}.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:12px}
.card{border:1px solid #e4e4e4;border-radius:6px;padding:10px 12px}.card table{width:100%;margin:6px 0 0}
.card td,.bits td{border:0;padding:1px 4px}
.bits td+td{text-align:right;font-variant-numeric:tabular-nums}
.bits td:first-child{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;white-space:nowrap}
.bitstring{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;white-space:nowrap;width:45%}
.bits1,.cmd{white-space:nowrap}.bits1 small{font-family:system-ui,sans-serif;color:#666}
.barcell{width:40%}.bar{display:block;height:10px;background:#4c72b0;border-radius:2px;
min-width:1px}code{font-size:12px}
.panels{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:8px 16px}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12.5px;margin:4px 0}.legend i{display:inline-block;
width:11px;height:11px;border-radius:2px;margin-right:5px;vertical-align:-1px}
svg circle:hover,svg rect:hover{stroke:#000}
.controls{display:flex;flex-wrap:wrap;gap:8px 16px;align-items:center;margin:8px 0;font-size:13px}
.controls select,.controls input{font:inherit;font-size:13px}.jobs-wrap{max-height:70vh;overflow:auto;
border:1px solid #eee}table.jobs{margin:0;width:100%}table.jobs thead th{position:sticky;top:0;z-index:1}
table.jobs th[data-sort]{cursor:pointer;white-space:nowrap}th[aria-sort=ascending]::after{content:" ▲"}
th[aria-sort=descending]::after{content:" ▼"}table.jobs>tbody>tr{cursor:pointer}table.jobs>tbody>tr:hover{
background:#f7faff}table.jobs>tbody>tr>td{white-space:nowrap;padding:3px 5px;font-size:12.5px}
table.jobs>thead th{padding:3px 5px;font-size:12.5px}
table.jobs>tbody>tr>td:nth-child(2){white-space:normal;word-break:break-word;min-width:9em}
summary{color:#3465a4;font-size:12px}
details p{margin:2px 0}.message{color:#8a1c1c}
[hidden]{display:none!important}
""".replace("FONTS", FONTS)

SCRIPT = """
(function () {
  "use strict";
  var table = document.getElementById("jobs-table");
  if (!table) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var controls = document.getElementById("jobs-controls");
  var selects = Array.prototype.slice.call(controls.querySelectorAll("select"));
  var search = controls.querySelector("input");
  var count = document.getElementById("jobs-count");
  controls.hidden = false;

  function filter() {
    var q = search.value.trim().toLowerCase();
    var shown = 0;
    rows.forEach(function (row) {
      var keep = selects.every(function (s) {
        return !s.value || row.cells[+s.getAttribute("data-column")].textContent === s.value;
      });
      if (keep && q) {  // the name or the job id (in the row's details)
        var name = row.cells[1].getAttribute("data-v");
        keep = (name + " " + row.querySelector("code").textContent).toLowerCase().indexOf(q) !== -1;
      }
      row.hidden = !keep;
      if (keep) { shown += 1; }
    });
    count.textContent = shown + " of " + rows.length + " jobs shown";
  }

  function value(row, index, numeric) {
    var cell = row.cells[index];
    var v = cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : cell.textContent;
    if (!numeric) { return v.toLowerCase(); }
    return v === "" ? null : parseFloat(v);
  }

  function sort(th) {
    var index = th.cellIndex;
    var numeric = th.getAttribute("data-sort") === "num";
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(th.parentNode.cells, function (h) { h.setAttribute("aria-sort", "none"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var keyed = rows.map(function (row, i) { return [value(row, index, numeric), i, row]; });
    keyed.sort(function (a, b) {
      if (a[0] === b[0]) { return a[1] - b[1]; }
      if (a[0] === null) { return 1; }  // blanks last, either way
      if (b[0] === null) { return -1; }
      return (a[0] < b[0] ? -1 : 1) * (ascending ? 1 : -1);
    });
    rows = keyed.map(function (k) { return k[2]; });
    rows.forEach(function (row) { body.appendChild(row); });
  }

  table.tHead.addEventListener("click", function (event) {
    var th = event.target.closest("th[data-sort]");
    if (th) { sort(th); }
  });
  body.addEventListener("click", function (event) {
    if (event.target.closest("details, a, input, select")) { return; }  // they handle their own clicks
    var row = event.target.closest("tr");
    var details = row && row.querySelector("details");
    if (details) { details.open = !details.open; }
  });
  selects.forEach(function (s) { s.addEventListener("change", filter); });
  search.addEventListener("input", filter);
  filter();
})();
"""
