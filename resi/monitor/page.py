"""The status pages, rendered on the server from the neurons' own records: HTML with inline CSS and SVG, no
script and no outside asset (they work offline). Every value is escaped: hotkeys come from the chain and gate
details can quote a miner's file.

- :func:`validator_page`: a validator's last epochs (every miner's score, the deciding reason of each zero,
  completeness / quality / truth factor, EMA and weight; weights set and when) and each uid's EMA over time.
- :func:`network_page`: a local network's validators (as above) and miners, with links to their endpoints.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from resi.status import last_published, miner_epochs, published_line, validator_epochs, zero_reason

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}
tr.zero td{color:#a00}h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.5em}h3{font-size:1em}.muted{color:#777}"""


def _when(moment: float | None) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "not yet"


def document(title: str, body: str) -> str:
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>"
            f"<p class=muted>rendered {_when(time.time())}</p>{body}</body></html>")


def ema_chart(epochs: list[dict], width: int = 640, height: int = 220) -> str:
    """An SVG line per uid of its EMA after each epoch (oldest left). ``epochs``: newest first, as stored."""
    ordered = list(reversed(epochs))
    series: dict[int, list[tuple[int, float]]] = {}
    for i, record in enumerate(ordered):
        for r in record.get("results") or []:
            series.setdefault(int(r["uid"]), []).append((i, float(r.get("ema") or 0.0)))
    if not series:
        return "<p class=muted>no EMA to chart yet</p>"
    top = max((v for points in series.values() for _, v in points), default=0.0) or 1.0
    pad, steps = 36, max(1, len(ordered) - 1)

    def xy(i: int, v: float) -> str:
        x = pad + (width - 2 * pad) * (i / steps if len(ordered) > 1 else 0.5)
        y = height - pad - (height - 2 * pad) * (v / top)
        return f"{x:.1f},{y:.1f}"

    parts = [f'<svg id=ema-chart xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role=img aria-label="EMA per uid over the last epochs">',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#999"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#999"/>',
             f'<text x="{pad - 4}" y="{pad + 4}" font-size="10" text-anchor="end">{top:.3g}</text>',
             f'<text x="{pad - 4}" y="{height - pad}" font-size="10" text-anchor="end">0</text>']
    for i, record in enumerate(ordered):
        parts.append(f'<text x="{xy(i, 0).split(",")[0]}" y="{height - pad + 14}" font-size="9" '
                     f'text-anchor="middle">{escape(str(record["epoch_id"])[-8:])}</text>')
    for n, (uid, points) in enumerate(sorted(series.items())):
        color = PALETTE[n % len(PALETTE)]
        path = " ".join(xy(i, v) for i, v in points)
        parts.append(f'<polyline class=ema data-uid="{uid}" fill="none" stroke="{color}" stroke-width="2" '
                     f'points="{path}"/>')
        for i, v in points:
            x, y = xy(i, v).split(",")
            parts.append(f'<circle cx="{x}" cy="{y}" r="2.5" fill="{color}"/>')
        parts.append(f'<text x="{width - pad + 4}" y="{pad + 12 * n}" font-size="10" fill="{color}">uid {uid}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _epoch_table(record: dict, names: dict[str, str]) -> str:
    results = sorted(record.get("results") or [], key=lambda r: (-float(r.get("score", 0)), r.get("uid", 0)))
    rows = []
    for r in results:
        reason = zero_reason(r)
        hotkey = str(r.get("hotkey", ""))
        who = names.get(hotkey) or hotkey[:12] + "…"
        rows.append(
            f"<tr class='miner{' zero' if reason else ''}' data-uid='{escape(str(r.get('uid')))}'>"
            f"<td>{escape(str(r.get('uid')))}</td><td class=l title='{escape(hotkey)}'>{escape(who)}</td>"
            f"<td class=score>{float(r.get('score', 0)):.4f}</td><td>{float(r.get('completeness', 0)):.3f}</td>"
            f"<td>{float(r.get('quality', 0)):.3f}</td><td>{float(r.get('truth_factor', 0)):.3f}</td>"
            f"<td>{float(r.get('ema', 0)):.4f}</td><td>{float(r.get('weight', 0)):.4f}</td>"
            f"<td class='l reason'>{escape(reason or '')}</td></tr>")
    weights = (f"weights set {_when(record.get('weights_set_at'))}" if record.get("weights_set")
               else "weights not set yet")
    uploaded = "results uploaded" if record.get("results_uploaded") else "results not uploaded yet"
    return (f"<h3 class=epoch>epoch {escape(str(record['epoch_id']))}: {len(results)} miners judged; {weights}; "
            f"{uploaded}</h3><table><tr><th>uid</th><th class=l>miner</th><th>score</th><th>completeness</th>"
            f"<th>quality</th><th>truth</th><th>EMA</th><th>weight</th><th class=l>why 0</th></tr>"
            + "".join(rows) + "</table>")


def validator_section(state_path: Path, epochs: int = 6, names: dict[str, str] | None = None) -> str:
    """A validator's last ``epochs`` epochs and its EMA chart, from its state database (read-only use)."""
    records, _ = validator_epochs(state_path, epochs)
    if not records:
        return "<p class=muted>no epoch validated yet</p>"
    published = published_line(last_published(state_path.parent, records))
    return (f"<p class=published>{escape(published)}</p><h3>EMA per uid</h3>" + ema_chart(records)
            + "".join(_epoch_table(r, names or {}) for r in records))


def validator_page(hotkey: str, state_path: Path, epochs: int = 6) -> str:
    return document(f"RESI validator {hotkey}", validator_section(state_path, epochs))


def miner_section(checkpoint_path: Path, epochs: int = 3) -> str:
    """A miner's last epochs from its checkpoint."""
    recent = miner_epochs(checkpoint_path, epochs)
    if not recent:
        return "<p class=muted>no epoch yet</p>"
    rows = "".join(
        f"<tr><td class=l>{escape(e['epoch_id'])}</td><td>{e['zipcodes_done']}/{e['zipcodes']}</td><td>{e['rows']}</td>"
        f"<td class=l>{_when(e['uploaded_at'])}</td><td class=l>{escape(str(e['reported'] or '-'))}</td></tr>"
        for e in recent)
    return ("<table><tr><th class=l>epoch</th><th>zipcodes</th><th>rows</th><th class=l>uploaded</th>"
            f"<th class=l>reported</th></tr>{rows}</table>")


def network_page(description: dict, run_dir: Path) -> str:
    """A local network on one page: each validator's epochs and chart, each miner's epochs, their links."""
    names = {p["hotkey"]: p["name"] for p in description.get("participants", [])}
    body = [f"<p>API {escape(description.get('api_url', ''))}, listing site {escape(description.get('site_url', ''))}, "
            f"chain {escape(description.get('chain_spec', ''))}</p>"]
    for p in description.get("participants", []):
        if p["role"] != "validator":
            continue
        body.append(f"<h2 class=validator>validator {escape(p['name'])} (uid {p['uid']})</h2>"
                    f"{_links(p, ('/metrics', '/healthz', '/'))}")
        body.append(validator_section(run_dir / "validators" / p["name"] / "state.db", names=names))
    for p in description.get("participants", []):
        if p["role"] != "miner":
            continue
        kind = f" ({escape(p['strategy'])})" if p.get("strategy") else ""
        body.append(f"<h2>miner {escape(p['name'])}{kind} (uid {p['uid']})</h2>{_links(p, ('/metrics', '/healthz'))}")
        body.append(miner_section(run_dir / "miners" / p["name"] / "checkpoint.db"))
    return document("RESI local network", "".join(body))


def _links(participant: dict, paths: tuple[str, ...]) -> str:
    url = participant.get("monitor_url")
    if not url:
        return ""
    return "<p>" + " · ".join(f"<a href='{escape(url)}{path}'>{path}</a>" for path in paths) + "</p>"
