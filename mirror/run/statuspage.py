"""The daemon's status page (``/``) and its data (``/status.json``): one self-contained HTML page.

No JavaScript and no outside assets, so it works offline and behind any proxy; the
page reloads itself with a meta refresh. Built from :func:`mirror.catalog.status.overview`,
the data ``status --json`` and ``status --failed --json`` print. Every string that came
from the server or the catalog is escaped.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from html import escape
from typing import TYPE_CHECKING

from aiohttp import web

from mirror.catalog.status import human_bytes, overview
from mirror.domain import JsonObject
from mirror.errors import MirrorError

if TYPE_CHECKING:
    from mirror.catalog import Catalog

REFRESH_SECONDS = 30
FAILED_SHOWN = 200
_COUNTS = (("series", "series_total"), ("done", "done"), ("queued", "queued"),
           ("fetching", "fetching"), ("failed", "failed"), ("retired", "retired"))
_STYLE = """
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.5em 0 .4em}
table{border-collapse:collapse;background:#fff}th,td{padding:.3em .7em;border:1px solid #ddd}
th{background:#eee;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b00020}.muted{color:#777}code{font-size:.9em}
svg{background:#fff;border:1px solid #ddd}svg text{font:11px system-ui,sans-serif;fill:#555}
"""


def add_routes(app: web.Application, catalog: Catalog) -> None:
    """Register ``/`` and ``/status.json``: an overview of *catalog*, asked at each request."""

    async def data() -> JsonObject:
        return await overview(catalog, failed_limit=FAILED_SHOWN)

    async def page(_: web.Request) -> web.Response:
        try:
            body = render(await data())
        except MirrorError as exc:
            body = _document(f"<p class=bad>catalog unreachable: {escape(str(exc))}</p>")
            return web.Response(status=503, text=body, content_type="text/html")
        return web.Response(text=body, content_type="text/html")

    async def as_json(_: web.Request) -> web.Response:
        try:
            return web.json_response(await data(), dumps=lambda d: json.dumps(d, indent=2))
        except MirrorError as exc:
            return web.json_response({"error": str(exc)}, status=503)

    app.router.add_get("/", page)
    app.router.add_get("/status.json", as_json)


def render(data: JsonObject) -> str:
    """The whole page for one :func:`overview` result."""
    parts = [
        "<h1>tcia-mirror</h1>",
        f"<p class=muted>as of {escape(_when(data.get('generated_at')))} · refreshes every "
        f"{REFRESH_SECONDS} s · <a href=status.json>status.json</a> · "
        "<a href=metrics>metrics</a> · <a href=healthz>healthz</a></p>",
        "<h2>Collections</h2>", _collections(data.get("collections") or []),
        "<h2>Throughput (bytes committed per hour)</h2>", _chart(data.get("throughput") or {}),
        "<h2>Failed series</h2>", _failed(data.get("failed") or []),
    ]
    return _document("\n".join(parts))


def _document(body: str) -> str:
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<meta http-equiv=refresh content={REFRESH_SECONDS}>"
            "<meta name=viewport content='width=device-width,initial-scale=1'>"
            f"<title>tcia-mirror status</title><style>{_STYLE}</style></head>"
            f"<body>{body}</body></html>")


def _collections(rows: list[JsonObject]) -> str:
    if not rows:
        return "<p>The catalog has no collections yet.</p>"
    head = "".join(f"<th>{name}</th>" for name, _ in _COUNTS)
    out = [f"<table id=collections><tr><th>collection</th>{head}<th>on disk</th>"
           "<th>last poll</th><th>watermark</th><th>hash check</th></tr>"]
    for row in rows:
        counts = "".join(f"<td class=n data-key={key}>{int(row.get(key) or 0)}</td>"
                         for _, key in _COUNTS)
        out.append(
            f"<tr><td>{escape(str(row.get('collection', '')))}</td>{counts}"
            f"<td class=n>{human_bytes(int(row.get('bytes_on_disk') or 0))}</td>"
            f"<td>{_poll(row)}</td><td>{escape(str(row.get('watermark') or '-'))}</td>"
            f"<td>{_hash_check(row)}</td></tr>")
    out.append("</table>")
    return "".join(out)


def _poll(row: JsonObject) -> str:
    when = row.get("last_poll")
    if not when:
        return "never"
    text = escape(_when(when))
    if row.get("last_poll_ok") is False:
        error = row.get("last_poll_error") or "failed"
        return f"{text} <span class=bad>{escape(str(error))}</span>"
    return f"{text} ok"


def _hash_check(row: JsonObject) -> str:
    """Whatever hash-check fields the status rows carry; "never" when there are none."""
    fields = {k: v for k, v in row.items() if "hash" in k and v not in (None, "")}
    if not fields:
        return "never"
    return "<br>".join(f"{escape(k)}: {escape(_when(v) if isinstance(v, str) else str(v))}"
                       for k, v in sorted(fields.items()))


def _failed(rows: list[JsonObject]) -> str:
    if not rows:
        return "<p>No failed series.</p>"
    out = ["<table id=failed><tr><th>collection</th><th>series</th><th>patient</th>"
           "<th>attempts</th><th>last error</th></tr>"]
    for row in rows:
        cells = (row.get(k) for k in ("collection", "series_uid", "patient_id", "attempts",
                                      "last_error"))
        out.append("<tr>" + "".join(f"<td>{escape('' if v is None else str(v))}</td>"
                                    for v in cells) + "</tr>")
    out.append("</table>")
    if len(rows) >= FAILED_SHOWN:
        out.append(f"<p class=muted>first {FAILED_SHOWN} shown; "
                   "<code>tcia-mirror status --failed</code> lists all</p>")
    return "".join(out)


def _chart(throughput: JsonObject) -> str:
    """Inline SVG: one bar per hour over the charted window (empty hours are zero)."""
    hours = int(throughput.get("hours") or 0)
    try:
        start = datetime.fromisoformat(str(throughput.get("since")))
    except ValueError:
        return "<p>No throughput data.</p>"
    got = {b["hour"]: b for b in throughput.get("buckets") or []}
    slots = [(start + timedelta(hours=i)).isoformat() for i in range(hours)]
    values = [int(got.get(s, {}).get("bytes") or 0) for s in slots]
    top = max(values, default=0) or 1
    width, height, left, bottom = 760, 200, 70, 24
    step = (width - left - 10) / max(hours, 1)
    bars = []
    for i, (slot, value) in enumerate(zip(slots, values, strict=True)):
        h = (height - bottom - 10) * value / top
        x, y = left + i * step, height - bottom - h
        series = int(got.get(slot, {}).get("series") or 0)
        bars.append(f"<rect x={x:.1f} y={y:.1f} width={step * 0.8:.1f} height={h:.1f} "
                    f"fill=#3b7dd8 data-bytes={value}><title>{escape(slot[:13])}h UTC: "
                    f"{human_bytes(value)} in {series} series</title></rect>")
        if i % 6 == 0:
            bars.append(f"<text x={x:.1f} y={height - 8}>{escape(slot[11:13])}:00</text>")
    axis = (f"<text x=4 y=16>{human_bytes(top if top > 1 else 0)}</text>"
            f"<text x=4 y={height - bottom}>0 B</text>"
            f"<line x1={left - 4} y1={height - bottom} x2={width - 6} y2={height - bottom} "
            "stroke=#999 />")
    total = human_bytes(sum(values))
    return (f"<svg id=throughput role=img width={width} height={height} "
            f"viewBox='0 0 {width} {height}' xmlns='http://www.w3.org/2000/svg'>"
            f"<title>{total} committed in the last {hours} hours</title>{axis}{''.join(bars)}"
            f"</svg><p class=muted>{total} committed in the last {hours} hours (UTC)</p>")


def _when(value: object) -> str:
    """ISO timestamps as ``YYYY-MM-DD HH:MM UTC``; anything else as given."""
    text = str(value or "")
    return f"{text[:16].replace('T', ' ')} UTC" if len(text) >= 16 and text[10] == "T" else text
