"""The HTML page's inline style sheet and script (constants, so their CSP hashes are fixed).

They live in Python rather than in .css/.js files so that they ship in the wheel
without package-data settings. The script reads the JSON block ``chain-data``
and writes only through ``textContent`` and ``createElement``: no
``innerHTML``, no ``eval``, no URL built from data.
"""

from __future__ import annotations

PAGE_CSS = r"""
:root{color-scheme:light;--ink:#1f2328;--muted:#59636e;--line:#d1d9e0;--accent:#0072B2}
*{box-sizing:border-box}
body{margin:0;color:var(--ink);background:#f6f8fa;
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header{padding:12px 20px;background:#fff;border-bottom:1px solid var(--line)}
h1{font-size:20px;margin:0 0 2px;overflow-wrap:anywhere}
h2{font-size:15px;margin:0 0 8px}
h3{font-size:15px;margin:0 0 8px;overflow-wrap:anywhere}
.summary,.tools{margin:2px 0;color:var(--muted)}
button{font:inherit;padding:2px 10px;border:1px solid var(--line);border-radius:5px;
background:#f6f8fa;cursor:pointer}
.layout{display:grid;grid-template-columns:minmax(0,1fr) 360px;gap:16px;padding:16px 20px}
.graph,#details,#legend,#status{background:#fff;border:1px solid var(--line);border-radius:6px}
.graph{overflow:auto;max-height:78vh;min-height:120px}
.graph.missing{padding:12px 16px;color:var(--muted);min-height:0}
.graph svg{display:block;margin:auto}
.graph.fit svg{max-width:100%;height:auto}
.graph g.node{cursor:pointer}
.graph g.node:focus{outline:none}
.graph g.node.selected polygon,.graph g.node.selected ellipse,.graph g.node.selected path{
stroke:var(--accent);stroke-width:4px}
#details{padding:12px 14px;align-self:start;position:sticky;top:12px;max-height:94vh;overflow:auto;
overflow-wrap:anywhere}
#details dl{margin:0;display:grid;grid-template-columns:max-content minmax(0,1fr);gap:4px 10px}
#details dt{color:var(--muted)}
#details dd{margin:0;white-space:pre-wrap}
#details ul{margin:0;padding-left:18px}
#details pre{margin:0;white-space:pre-wrap;font-size:12px;max-height:240px;overflow:auto}
#details .current{font-weight:600}
.link{border:0;background:none;padding:0;color:var(--accent);text-decoration:underline;cursor:pointer;
text-align:left;overflow-wrap:anywhere}
.hint{color:var(--muted);margin:0}
#legend,#status{grid-column:1/-1;padding:12px 14px}
.legend-list{list-style:none;margin:0 0 6px;padding:0;display:flex;flex-wrap:wrap;gap:6px 18px}
.legend-list li{display:flex;align-items:center;gap:6px}
.icon{width:32px;height:24px;fill:#fff;stroke:#333;stroke-width:1.3}
.swatch{display:inline-block;width:26px;height:16px;border:1px solid #333;border-radius:4px}
.edge{display:inline-block;width:34px;border-top:2px solid #555}
.edge.dashed{border-top-style:dashed;border-top-color:#7A5195}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:5px 8px;border-bottom:1px solid var(--line)}
td{overflow-wrap:anywhere}
td.name{min-width:14ch}td.version{min-width:9ch}td.kind,td.status{white-space:nowrap}
td.name,td.version{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
tbody tr{cursor:pointer}
tbody tr:hover,tbody tr.selected{background:#eef6fc}
.badge{display:inline-block;padding:0 8px;border-radius:10px;border:1px solid #333;
white-space:nowrap}
.reasons{margin:0;padding-left:18px}
@media (max-width:900px){.layout{grid-template-columns:minmax(0,1fr)}#details{position:static}}
"""

PAGE_JS = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("chain-data").textContent);
  var body = document.getElementById("details-body");
  var graph = document.getElementById("graph");
  var pinned = null;

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    if (cls) { e.className = cls; }
    return e;
  }
  function nodeLink(spec) {
    var name = spec.split("@")[0];
    var id = Object.prototype.hasOwnProperty.call(data.byName, name) ? data.byName[name] : null;
    if (!id) { return el("span", spec); }
    var b = el("button", spec, "link");
    b.type = "button";
    b.addEventListener("click", function () { show(id, true); });
    return b;
  }
  function list(items, make) {
    var ul = el("ul");
    items.forEach(function (item) {
      var li = el("li");
      li.appendChild(make ? make(item) : el("span", item));
      ul.appendChild(li);
    });
    return ul;
  }
  function row(dl, label, value) {
    if (value === null || value === undefined || value === "" ||
        (Array.isArray(value) && value.length === 0)) { return; }
    dl.appendChild(el("dt", label));
    var dd = el("dd");
    if (value instanceof Node) { dd.appendChild(value); } else { dd.textContent = String(value); }
    dl.appendChild(dd);
  }
  function mark(id) {
    document.querySelectorAll(".selected").forEach(function (e) {
      e.classList.remove("selected");
    });
    var g = document.getElementById(id);
    if (g) { g.classList.add("selected"); }
    var tr = document.querySelector('tr[data-id="' + id + '"]');
    if (tr) { tr.classList.add("selected"); }
  }
  function show(id, pin) {
    var d = Object.prototype.hasOwnProperty.call(data.nodes, id) ? data.nodes[id] : null;
    if (!d) { return; }
    if (pin) { pinned = id; }
    body.replaceChildren();
    body.appendChild(el("h3", d.name));
    var dl = el("dl");
    row(dl, "Kind", d.kind);
    var status = el("span", d.status, "badge st-" + d.statusKey);
    row(dl, "Status", status);
    row(dl, "Version", d.version === null ? "(none)" : d.version);
    row(dl, "Owner", d.owner);
    row(dl, "Description", d.description);
    row(dl, "Open reasons", d.reasons.length ? list(d.reasons) : null);
    row(dl, "Inputs", d.inputs.length ? list(d.inputs, nodeLink) : null);
    row(dl, "Consumers", d.consumers.length ? list(d.consumers, nodeLink) : null);
    if (d.versions.length) {
      var vs = list(d.versions.slice().reverse(), function (v) {
        return el("span", v, v === d.version ? "current" : null);
      });
      row(dl, "Versions", vs);
    }
    row(dl, "Tags", d.tags.join(", "));
    if (d.meta) { row(dl, "Metadata", el("pre", d.meta)); }
    body.appendChild(dl);
    mark(id);
  }
  function nodeOf(target) {
    var g = target && target.closest ? target.closest("g.node") : null;
    return g && Object.prototype.hasOwnProperty.call(data.nodes, g.id) ? g.id : null;
  }
  if (graph) {
    graph.addEventListener("click", function (ev) {
      var id = nodeOf(ev.target);
      if (id) { show(id, true); } else { pinned = null; }
    });
    graph.addEventListener("mouseover", function (ev) {
      var id = nodeOf(ev.target);
      if (id && pinned === null) { show(id, false); }
    });
    graph.addEventListener("keydown", function (ev) {
      var id = nodeOf(ev.target);
      if (id && (ev.key === "Enter" || ev.key === " ")) { ev.preventDefault(); show(id, true); }
    });
    graph.querySelectorAll("g.node").forEach(function (g) {
      if (Object.prototype.hasOwnProperty.call(data.nodes, g.id)) {
        g.setAttribute("tabindex", "0");
        g.setAttribute("role", "button");
      }
    });
  }
  document.querySelectorAll("tr[data-id]").forEach(function (tr) {
    var id = tr.getAttribute("data-id");
    tr.addEventListener("click", function () { show(id, true); });
    tr.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") { show(id, true); }
    });
  });
  var zoom = document.getElementById("zoom");
  if (zoom && graph) {
    zoom.addEventListener("click", function () {
      var fit = graph.classList.toggle("fit");
      zoom.textContent = fit ? "Actual size" : "Fit to width";
    });
  }
})();
"""
