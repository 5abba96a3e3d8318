"""The status pages, rendered on the server from the neurons' own records: HTML with inline CSS and SVG, no
script and no outside asset (they work offline). Every value is escaped: hotkeys come from the chain and gate
details can quote a miner's file.

- :func:`validator_page`: a validator's newest epoch, one row per miner (score, EMA, weight and the verdict in
  the words of ``resi.validation.verdict``), validators and new registrations named apart, each miner's EMA
  over time, and the older epochs folded.
- :func:`network_page`: a local network: the same for its first validator with each miner's own record of its
  upload beside its row, the other validators folded, and links to every endpoint.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from resi.miner.checkpoint import miner_epochs
from resi.status import last_published, published_line
from resi.validation.verdict import JOINED, NOT_MINING, VALIDATOR, stored_verdict
from resi.validator.state import validator_epochs

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}
tr.zero td{color:#a00}ul.legend{list-style:none;padding:0;columns:3;font-size:.9em}details.older{margin:.3em 0}
p.not-mining{color:#555}h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.5em}h3{font-size:1em}.muted{color:#777}"""


def _when(moment: float | None) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "not yet"


def document(title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>"
        f"<p class=muted>rendered {_when(time.time())}</p>{body}</body></html>"
    )


DASHES = ("", "7 4", "2 3", "9 3 2 3", "14 4", "1 2", "4 2 1 2")
"""Stroke patterns. Each series differs from the others in colour and in pattern, so lines that coincide
(miners with equal EMAs) still show each other through their gaps."""


def series_style(n: int) -> tuple[str, str]:
    """The colour and dash pattern of the ``n``-th series (the chart and its legend use the same): a pair of
    its own for the first seventy series (the palette's ten colours by seven patterns)."""
    return PALETTE[n % len(PALETTE)], DASHES[(n + n // len(PALETTE)) % len(DASHES)]


def ema_chart(epochs: list[dict], names: dict[str, str] | None = None, width: int = 640, height: int = 220) -> str:
    """An SVG line per miner of its EMA after each epoch (oldest left), each named in a legend below the chart
    (an HTML list: it never runs out of room). ``epochs``: newest first, as stored. Validators are not drawn:
    they do not mine."""
    names = names or {}
    ordered = list(reversed(epochs))
    series: dict[int, list[tuple[int, float]]] = {}
    label: dict[int, str] = {}
    for i, record in enumerate(ordered):
        for r in record.get("results") or []:
            if stored_verdict(r).kind == VALIDATOR:  # a uid that had just registered is a miner at EMA 0
                continue
            uid = int(r["uid"])
            series.setdefault(uid, []).append((i, float(r.get("ema") or 0.0)))
            label[uid] = names.get(str(r.get("hotkey", "")), f"uid {uid}")
    if not series:
        return "<p class=muted>no EMA to chart yet</p>"
    top = max((v for points in series.values() for _, v in points), default=0.0) or 1.0
    pad, steps = 36, max(1, len(ordered) - 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = pad + (width - 2 * pad) * (i / steps if len(ordered) > 1 else 0.5)
        return x, height - pad - (height - 2 * pad) * (v / top)

    parts = [
        f'<svg id=ema-chart xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role=img aria-label="EMA of each miner over the last epochs">',
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#999"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#999"/>',
        f'<text x="{pad - 4}" y="{pad + 4}" font-size="10" text-anchor="end">{top:.3g}</text>',
        f'<text x="{pad - 4}" y="{height - pad}" font-size="10" text-anchor="end">0</text>',
    ]
    for i, record in enumerate(ordered):
        parts.append(
            f'<text x="{xy(i, 0)[0]:.1f}" y="{height - pad + 14}" font-size="9" '
            f'text-anchor="middle">{escape(str(record["epoch_id"])[-8:])}</text>'
        )
    legend = []
    order = sorted(series, key=lambda uid: (-series[uid][-1][1], uid))  # the legend reads from the top earner
    for n, uid in enumerate(order):
        color, dash = series_style(n)
        points = series[uid]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in points))
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<polyline class=ema data-uid="{uid}" data-name="{escape(label[uid])}" fill="none" '
            f'stroke="{color}" stroke-width="2"{dashed} points="{path}"><title>{escape(label[uid])}</title>'
            "</polyline>"
        )
        for i, v in points:
            x, y = xy(i, v)
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"/>')
        swatch = (
            f'<svg width="28" height="8" aria-hidden=true><line x1="0" y1="4" x2="28" y2="4" stroke="{color}" '
            f'stroke-width="2"{dashed}/></svg>'
        )
        legend.append(f"<li data-uid='{uid}'>{swatch} {escape(label[uid])} <span class=muted>{points[-1][1]:.4f}</span></li>")
    parts.append("</svg>")
    return "".join(parts) + "<ul class=legend>" + "".join(legend) + "</ul>"


def miners_table(record: dict, names: dict[str, str], uploads: dict[str, str] | None = None) -> str:
    """One row per miner of an epoch: score, EMA, weight and the verdict in words (and, when ``uploads`` has
    it, the miner's own record of its upload: hotkey -> text); then who was not a miner in it."""
    said = [(r, stored_verdict(r, names)) for r in record.get("results") or []]
    results = sorted(
        ((r, v) for r, v in said if v.kind not in NOT_MINING), key=lambda rv: (-float(rv[0].get("score", 0)), rv[0].get("uid", 0))
    )
    rows = []
    for r, v in results:
        hotkey = str(r.get("hotkey", ""))
        who = names.get(hotkey) or hotkey[:12] + "…"
        upload = f"<td class='l upload'>{escape(uploads.get(hotkey, 'no record'))}</td>" if uploads is not None else ""
        rows.append(
            f"<tr class='miner{'' if v.paid else ' zero'}' data-uid='{escape(str(r.get('uid')))}'>"
            f"<td>{escape(str(r.get('uid')))}</td><td class=l title='{escape(hotkey)}'>{escape(who)}</td>"
            f"<td class=score>{float(r.get('score', 0)):.4f}</td><td class=ema>{float(r.get('ema', 0)):.4f}</td>"
            f"<td class=weight>{float(r.get('weight', 0)):.4f}</td><td class='l reason'>{escape(v.words)}</td>"
            f"{upload}</tr>"
        )
    head = (
        "<tr><th>uid</th><th class=l>miner</th><th>score</th><th>EMA</th><th>weight</th><th class=l>verdict</th>"
        + ("<th class=l>its own record of the upload</th>" if uploads is not None else "")
        + "</tr>"
    )
    others = []
    for kind, text in (
        (VALIDATOR, "validators (they validate; weight 0)"),
        (JOINED, "registered after the epoch began (not expected to take part)"),
    ):
        listed = [names.get(str(r.get("hotkey", "")), f"uid {r.get('uid')}") for r, v in said if v.kind == kind]
        if listed:
            others.append(f"<p class='not-mining {kind}'>{escape(text)}: {escape(', '.join(listed))}</p>")
    return f"<table class=miners>{head}{''.join(rows)}</table>{''.join(others)}"


def _epoch_line(record: dict) -> str:
    results = [r for r in record.get("results") or [] if stored_verdict(r).kind not in NOT_MINING]
    paid = sum(1 for r in results if float(r.get("score", 0)) > 0)
    weights = f"weights set {_when(record.get('weights_set_at'))}" if record.get("weights_set") else "weights not set yet"
    uploaded = "results uploaded" if record.get("results_uploaded") else "results not uploaded yet"
    return f"epoch {record['epoch_id']}: {len(results)} miners judged, {paid} paid; {weights}; {uploaded}"


def validator_section(
    state_path: Path, epochs: int = 6, names: dict[str, str] | None = None, uploads: dict[str, str] | None = None
) -> str:
    """A validator's newest epoch (one row per miner), its EMA chart, and its older epochs folded, from its
    state database (read-only use)."""
    records, _ = validator_epochs(state_path, epochs)
    if not records:
        return "<p class=muted>no epoch validated yet</p>"
    names = names or {}
    published = published_line(last_published(state_path.parent, records))
    latest, older = records[0], records[1:]
    folded = "".join(
        f"<details class=older><summary>{escape(_epoch_line(r))}</summary>{miners_table(r, names)}</details>" for r in older
    )
    return (
        f"<h3 class=epoch>{escape(_epoch_line(latest))}</h3>{miners_table(latest, names, uploads)}"
        f"<p class=published>{escape(published)}</p><h3>EMA of each miner</h3>{ema_chart(records, names)}"
        + (f"<h3>older epochs</h3>{folded}" if folded else "")
    )


def validator_page(hotkey: str, state_path: Path, epochs: int = 6) -> str:
    return document(f"RESI validator {hotkey}", validator_section(state_path, epochs))


def upload_record(checkpoint_path: Path) -> str:
    """A miner's newest epoch from its own checkpoint, in one line."""
    recent = miner_epochs(checkpoint_path, 1)
    if not recent:
        return "no epoch yet"
    e = recent[0]
    verified = {True: ", verified", False: ", not verified", None: ""}[e["upload_verified"]]
    return (
        f"epoch {e['epoch_id']}: {e['zipcodes_done']} of {e['zipcodes']} zipcodes, {e['rows']} rows, uploaded "
        f"{_when(e['uploaded_at'])}{verified}, reported {e['reported'] or '-'}"
    )


def network_page(description: dict, run_dir: Path) -> str:
    """A local network on one page: every miner (the first validator's verdicts, beside the miner's own record
    of its upload), the EMA chart, then each validator (weights, published listings, older epochs folded) and
    the links to every endpoint."""
    participants = description.get("participants", [])
    names = {p["hotkey"]: p["name"] for p in participants}  # the names the terminal says
    validators = [p for p in participants if p["role"] == "validator"]
    miners = [p for p in participants if p["role"] == "miner"]
    uploads = {p["hotkey"]: upload_record(run_dir / "miners" / p["name"] / "checkpoint.db") for p in miners}
    body = [
        f"<p>API {escape(description.get('api_url', ''))}, listing site {escape(description.get('site_url', ''))}, "
        f"chain {escape(description.get('chain_spec', ''))}</p>"
    ]
    for n, p in enumerate(validators):
        state = run_dir / "validators" / p["name"] / "state.db"
        body.append(
            f"<h2 class=validator>{'miners, as ' if n == 0 else ''}validator {escape(p['name'])} "
            f"(uid {p['uid']}) judged them</h2>{_links(p, ('/metrics', '/healthz', '/'))}"
        )
        body.append(validator_section(state, names=names, uploads=uploads) if n == 0 else _folded(state, names))
    body.append(
        "<h2>endpoints of the miners</h2><ul>"
        + "".join(
            f"<li>{escape(names[p['hotkey']])} (uid {p['uid']}) {_links(p, ('/metrics', '/healthz'), tag='span')}</li>"
            for p in miners
        )
        + "</ul>"
    )
    return document("RESI local network", "".join(body))


def _folded(state_path: Path, names: dict[str, str]) -> str:
    """Another validator: its published line, and its epochs folded (their tables repeat the first one's when
    validators agree)."""
    records, _ = validator_epochs(state_path, 6)
    if not records:
        return "<p class=muted>no epoch validated yet</p>"
    published = published_line(last_published(state_path.parent, records))
    return f"<p class=published>{escape(published)}</p>" + "".join(
        f"<details class=older><summary>{escape(_epoch_line(r))}</summary>{miners_table(r, names)}</details>" for r in records
    )


def _links(participant: dict, paths: tuple[str, ...], tag: str = "p") -> str:
    url = participant.get("monitor_url")
    if not url:
        return ""
    return f"<{tag}>" + " · ".join(f"<a href='{escape(url)}{path}'>{path}</a>" for path in paths) + f"</{tag}>"
