"""What the local network reports after each epoch: a table on the terminal and ``summary.json``."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from resi.localnet.network import LocalNetwork, Participant
from resi.status import published_epoch, zero_reason


def results_of(net: LocalNetwork, validator: Participant) -> dict[str, dict]:
    """Epoch id -> that validator's validation_results.json (for every epoch it finished)."""
    folder = net.validator_dir(validator) / "results"
    out = {}
    for path in sorted(folder.glob("*.json")) if folder.exists() else []:
        try:
            out[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # being written
    return out


def weights_set(net: LocalNetwork, validator: Participant, epoch_id: str) -> bool:
    """Whether the validator put the EMA of ``epoch_id`` on chain (its state says so once submitted)."""
    path = net.validator_dir(validator) / "state.db"
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
            row = db.execute("SELECT weights_set FROM epochs WHERE epoch_id=?", (epoch_id,)).fetchone()
    except sqlite3.Error:
        return False
    return bool(row and row[0])


def _truth(miner: dict, names: dict[str, str]) -> str:
    """The deciding reason of a zero in plain words (hotkeys as participant names), else the truth check."""
    reason = zero_reason(miner)
    if reason is None:
        return f"ok ({miner.get('sample_size', 0)} refetched)"
    for hotkey, name in names.items():
        reason = reason.replace(hotkey, name)
    return reason


def epoch_summary(net: LocalNetwork, epoch_id: str, documents: dict[str, dict]) -> dict:
    """The summary of one epoch from every validator's results (the first validator's scores)."""
    validators = [p for p in net.participants if p.role == "validator"]
    first = documents[validators[0].name]
    by_hotkey = {m["hotkey"]: m for m in first.get("miners") or []}
    miners = []
    names = {p.signer.hotkey: p.name for p in net.participants}
    for p in net.participants:
        if p.role != "miner":
            continue
        m = by_hotkey.get(p.signer.hotkey, {})
        miners.append({
            "name": p.name, "uid": p.uid, "hotkey": p.signer.hotkey, "cheater": p.strategy,
            "successor_of": p.successor_of, "ema": m.get("ema", 0.0),
            "rows_uploaded": m.get("rows_uploaded", 0), "rows_valid": m.get("rows_valid", 0),
            "rows_credited": m.get("rows_credited", 0), "completeness": m.get("completeness", 0.0),
            "quality": m.get("quality", 0.0), "truth_factor": m.get("truth_factor", 0.0),
            "truth_check": _truth(m, names) if m else "not evaluated", "score": m.get("score", 0.0),
            "weight": m.get("weight", 0.0), "reasons": m.get("reasons", {}),
        })
    return {
        "epoch_id": epoch_id,
        "miners": miners,
        "validators": [{"name": v.name, "hotkey": v.signer.hotkey,
                        "weights_set": weights_set(net, v, epoch_id),
                        "weights": documents[v.name].get("weights"),
                        "published": published_epoch(net.validator_dir(v), epoch_id)} for v in validators],
    }


def render(summary: dict) -> str:
    width = max([len(m["name"]) for m in summary["miners"]] + [5])
    lines = [f"epoch {summary['epoch_id']}",
             f"  {'miner':<{width}} {'uid':>3} {'rows':>6} {'valid':>6} {'score':>6} {'weight':>7}  truth check, or "
             "why the score is 0"]
    for m in summary["miners"]:
        lines.append(f"  {m['name']:<{width}} {m['uid']:>3} {m['rows_uploaded']:>6} {m['rows_valid']:>6} "
                     f"{m['score']:>6.3f} {m['weight']:>7.3f}  {m['truth_check']}")
        if m["reasons"]:
            lines.append(f"  {'':<{width}}     reasons: {', '.join(f'{k}={v}' for k, v in m['reasons'].items())}")
    for v in summary["validators"]:
        out = v.get("published")
        data = (f"published {out['rows']} validated listings in {out['zipcodes']} zipcodes (listings.parquet sha256 "
                f"{out['listings_sha256'][:12]})" if out else "validated listings not written")
        lines.append(f"  validator {v['name']}: weights {'set' if v['weights_set'] else 'NOT set'}; {data}")
    return "\n".join(lines)


def write(path: Path, epochs: list[dict], failed: list[str]) -> None:
    path.write_text(json.dumps({"epochs": epochs, "failed_processes": failed}, indent=2))
