"""``resi-data report``: one self-contained HTML page (inline SVG, inline style, nothing fetched) with the
zipcodes' inventory, median list price and price cuts over the epochs, and their latest listings."""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape

import duckdb

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1100px}
h2{margin-top:1.6em}table{border-collapse:collapse;font-size:13px}td,th{padding:2px 8px;border-bottom:1px solid #ddd}
td.n{text-align:right}svg{display:block;margin:.3em 0 1em}.muted{color:#777}.legend span{margin-right:1.2em}"""
LATEST_ROWS = 200


def line_chart(
    chart_id: str,
    title: str,
    labels: list[str],
    series: dict[str, list[float | None]],
    unit: str = "",
    width: int = 900,
    height: int = 260,
) -> str:
    """An SVG chart of one line per series over ``labels`` (epochs, oldest left), with its legend."""
    values = [v for points in series.values() for v in points if v is not None]
    if not values or not labels:
        return f"<p class=muted>{escape(title)}: nothing to chart yet</p>"
    top, low = max(values), min(values)  # the data's own range, padded: a level line stays readable
    margin = (top - low) * 0.1 or max(abs(top) * 0.05, 1.0)
    top, low = top + margin, max(0.0, low - margin) if low >= 0 else low - margin
    span = top - low
    pad_l, pad, steps = 70, 28, max(1, len(labels) - 1)

    def x(i: int) -> float:
        return pad_l + (width - pad_l - pad) * (i / steps if len(labels) > 1 else 0.5)

    def y(v: float) -> float:
        return height - pad - (height - 2 * pad) * ((v - low) / span)

    parts = [
        f'<svg id="{chart_id}" class=chart xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role=img aria-label="{escape(title)}">',
        f'<line x1="{pad_l}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#999"/>',
        f'<line x1="{pad_l}" y1="{pad}" x2="{pad_l}" y2="{height - pad}" stroke="#999"/>',
    ]
    for v in (low, (low + top) / 2, top):
        parts.append(
            f'<text x="{pad_l - 6}" y="{y(v) + 4:.1f}" font-size="11" text-anchor="end">{escape(_number(v, unit))}</text>'
        )
    every = max(1, len(labels) // 8)
    for i in range(0, len(labels), every):
        parts.append(
            f'<text x="{x(i):.1f}" y="{height - pad + 16}" font-size="10" text-anchor="middle">{escape(labels[i][:13])}</text>'
        )
    for n, (name, points) in enumerate(series.items()):
        color = COLORS[n % len(COLORS)]
        coords = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(points) if v is not None)
        parts.append(
            f'<polyline class=series data-name="{escape(name)}" fill="none" stroke="{color}" stroke-width="2" points="{coords}"/>'
        )
    parts.append("</svg>")
    legend = "".join(
        f'<span style="color:{COLORS[n % len(COLORS)]}">&#9644; {escape(name)}</span>' for n, name in enumerate(series)
    )
    return f"<h2>{escape(title)}</h2><div class=legend>{legend}</div>" + "".join(parts)


def _number(value: float, unit: str) -> str:
    if unit == "$":
        return f"${value / 1000:,.0f}k" if abs(value) >= 1000 else f"${value:,.0f}"
    return f"{value:,.0f}"


def build(con: duckdb.DuckDBPyConnection, zipcodes: list[str], since: str | None = None) -> str:
    """The page for ``zipcodes`` (over the epochs from ``since`` on), from a connection with the views."""
    where = "zipcode IN (" + ", ".join("?" for _ in zipcodes) + ")" + (" AND epoch_id >= ?" if since else "")
    params = [*zipcodes, *([since] if since else [])]
    rows = con.execute(
        f"SELECT epoch_id, zipcode, inventory, median_price, price_cuts FROM market WHERE {where} ORDER BY epoch_id", params
    ).fetchall()
    labels = sorted({r[0] for r in rows})
    at = {label: i for i, label in enumerate(labels)}

    def series(column: int) -> dict[str, list[float | None]]:
        out: dict[str, list[float | None]] = {z: [None] * len(labels) for z in zipcodes}
        for r in rows:
            out[r[1]][at[r[0]]] = None if r[column] is None else float(r[column])
        return out

    latest = con.execute(
        "SELECT zipcode, listing_id, address, listing_status, price, bedrooms, bathrooms, sqft, days_on_market, "
        f"epoch_id, validators FROM latest WHERE zipcode IN ({', '.join('?' for _ in zipcodes)}) "
        "AND epoch_id = (SELECT max(epoch_id) FROM listings) ORDER BY zipcode, price DESC",
        zipcodes,
    ).fetchall()
    head = ["zipcode", "listing", "address", "status", "price", "beds", "baths", "sqft", "days", "epoch", "validators"]
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class=n>{escape(_cell(v))}</td>" if isinstance(v, (int, float)) else f"<td>{escape(_cell(v))}</td>" for v in row
        )
        + "</tr>"
        for row in latest[:LATEST_ROWS]
    )
    more = f"<p class=muted>{len(latest) - LATEST_ROWS} more (resi-data sql)</p>" if len(latest) > LATEST_ROWS else ""
    title = "RESI validated listings: " + ", ".join(zipcodes)
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1><p class=muted>{len(labels)} epochs"
        f"{' from ' + escape(labels[0]) + ' to ' + escape(labels[-1]) if labels else ''}; made {made}</p>"
        + line_chart("inventory", "Inventory (active and pending listings)", labels, series(2))
        + line_chart("median-price", "Median list price", labels, series(3), unit="$")
        + line_chart("price-cuts", "Price cuts per epoch", labels, series(4))
        + f"<h2>Latest listings</h2><table id=latest><tr>{''.join(f'<th>{h}</th>' for h in head)}</tr>{body}"
        f"</table>{more}</body></html>"
    )


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.0f}" if value >= 1000 else f"{value:g}"
    return str(value)
