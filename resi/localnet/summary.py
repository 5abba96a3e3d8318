"""What the local network reports after each epoch: a table on the terminal and ``summary.json``."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from resi.localnet.network import LocalNetwork, Participant
from resi.status import published_epoch
from resi.validation.verdict import JOINED, stored_verdict
from resi.validator.results import NOTHING_EARNED


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
        said = stored_verdict(m, names) if m else None
        miners.append(
            {
                "name": p.name,
                "uid": p.uid,
                "hotkey": p.signer.hotkey,
                "cheater": p.strategy,
                "successor_of": p.successor_of,
                "ema": m.get("ema", 0.0),
                "rows_uploaded": m.get("rows_uploaded", 0),
                "rows_valid": m.get("rows_valid", 0),
                "rows_credited": m.get("rows_credited", 0),
                "completeness": m.get("completeness", 0.0),
                "quality": m.get("quality", 0.0),
                "truth_factor": m.get("truth_factor", 0.0),
                "verdict": said.kind if said else "not_judged",
                "why": said.words if said else "not judged by the first validator",
                "score": m.get("score", 0.0),
                "weight": m.get("weight", 0.0),
                "reasons": m.get("reasons", {}),
            }
        )
    return {
        "epoch_id": epoch_id,
        "miners": miners,
        "validators": [
            {
                "name": v.name,
                "hotkey": v.signer.hotkey,
                "weights_set": weights_set(net, v, epoch_id),
                "weights": documents[v.name].get("weights"),
                "published": published_epoch(net.validator_dir(v), epoch_id),
            }
            for v in validators
        ],
    }


def render(summary: dict) -> str:
    """An epoch's table: every miner's rows, score and weight and its verdict in words, the validators, and the
    epoch's verdict line."""
    width = max([len(m["name"]) for m in summary["miners"]] + [5])
    lines = [
        f"epoch {summary['epoch_id']}" + (f" ({summary['note']})" if summary.get("note") else ""),
        f"  {'miner':<{width}} {'uid':>3} {'rows':>6} {'valid':>6} {'score':>6} {'weight':>7}  verdict",
    ]
    for m in summary["miners"]:
        lines.append(
            f"  {m['name']:<{width}} {m['uid']:>3} {m['rows_uploaded']:>6} {m['rows_valid']:>6} "
            f"{m['score']:>6.3f} {m['weight']:>7.3f}  {m['why']}"
        )
    for v in summary["validators"]:
        out = v.get("published")
        data = (
            f"published {out['rows']} validated listings in {out['zipcodes']} zipcodes (listings.parquet sha256 "
            f"{out['listings_sha256'][:12]})"
            if out
            else "validated listings not written"
        )
        lines.append(f"  validator {v['name']}: {_weights(v)}; {data}")
    lines.append("  " + epoch_verdict(summary))
    return "\n".join(lines)


def _earned(validator: dict) -> bool:
    """Whether the validator had weights to set for the epoch (an EMA above 0 somewhere)."""
    weights = validator.get("weights") or {}
    return bool(weights.get("uids")) or weights.get("why") != NOTHING_EARNED


def _weights(validator: dict) -> str:
    if validator["weights_set"]:
        return "weights set"
    return "weights NOT set" if _earned(validator) else "no weights to set (no miner has earned anything yet)"


def epoch_verdict(summary: dict) -> str:
    """One line a person reads: what the honest miners were paid, whether every cheater got nothing."""
    honest = [m for m in summary["miners"] if m["cheater"] is None and m["verdict"] != JOINED]
    joined = [m["name"] for m in summary["miners"] if m["verdict"] == JOINED]
    cheaters = [m for m in summary["miners"] if m["cheater"] is not None]
    paid = [m for m in honest if m["score"] > 0]
    share = sum(m["weight"] for m in summary["miners"] if m["cheater"] is None)
    parts = [f"honest miners {len(paid)}/{len(honest)} paid, {share:.1%} of the weight"]
    if joined:
        parts.append(f"registered during the epoch: {', '.join(joined)}")
    if cheaters:
        zero = [m for m in cheaters if m["score"] == 0]
        rules = len({m["verdict"] for m in zero})
        parts.append(f"cheaters {len(zero)}/{len(cheaters)} at 0 ({rules} different verdicts, each in the table)")
        parts += [f"{m['name']} PAID {m['score']:.3f}" for m in cheaters if m["score"] > 0]
    unset = [v["name"] for v in summary["validators"] if not v["weights_set"] and _earned(v)]
    parts.append(
        f"weights NOT set by {', '.join(unset)}"
        if unset
        else "every validator set weights"
        if any(_earned(v) for v in summary["validators"])
        else "no weights to set yet (no miner has earned anything)"
    )
    return "verdict: " + "; ".join(parts)


def run_verdict(epochs: list[dict], failed: list[str]) -> str:
    """The whole run in one line."""
    if not epochs:
        failures = f"; failed: {', '.join(failed)} (see its log in logs/)" if failed else ""
        return f"run verdict: no epoch was counted{failures}"
    honest_paid = all(m["score"] > 0 for e in epochs for m in e["miners"] if m["cheater"] is None and m["verdict"] != JOINED)
    low = min(sum(m["weight"] for m in e["miners"] if m["cheater"] is None) for e in epochs)
    cheaters = {m["name"] for e in epochs for m in e["miners"] if m["cheater"] is not None}
    paid = sorted({m["name"] for e in epochs for m in e["miners"] if m["cheater"] is not None and m["score"] > 0})
    weights = all(v["weights_set"] or not _earned(v) for e in epochs for v in e["validators"])
    parts = [
        f"{len(epochs)} epoch{'' if len(epochs) == 1 else 's'} counted",
        f"honest miners {'paid in every epoch' if honest_paid else 'NOT paid in every epoch'}, "
        + ("all of the weight" if low >= 0.9995 else f"at least {low:.1%} of the weight"),
    ]
    if cheaters:
        parts.append(f"cheaters paid: {', '.join(paid)}" if paid else f"all {len(cheaters)} cheaters at 0 in every epoch")
    parts.append("weights set by every validator in every epoch" if weights else "some weights NOT set")
    if failed:
        parts.append(f"failed: {', '.join(failed)}")
    return "run verdict: " + "; ".join(parts)


def write(run_dir: Path, epochs: list[dict], failed: list[str]) -> None:
    """``summary.json`` (every figure) and ``summary.txt`` (the tables and the verdict lines, as printed)."""
    (run_dir / "summary.json").write_text(json.dumps({"epochs": epochs, "failed_processes": failed}, indent=2))
    text = [render(e) for e in epochs] + [run_verdict(epochs, failed)]
    (run_dir / "summary.txt").write_text("\n\n".join(text) + "\n")
