"""``status``: "what is my score?" What a neuron did lately, from its own records, and what the chain says
about its uid now (rank, incentive, emission, trust, the weights validators gave it, its last update).

``python neurons/miner.py status`` and ``python neurons/validator.py status`` (``resi-miner status``,
``resi-validator status``) take the neuron's own flags; ``--json`` prints the same as one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from resi.chain import Chain, ChainError, KeyLoadError, load_signer, open_chain
from resi.config import COUNT, SharedConfig, data_dir
from resi.listings.validated import FOLDER as VALIDATED_FOLDER
from resi.listings.validated import LISTINGS_FILE, MANIFEST_FILE
from resi.miner.checkpoint import miner_epochs
from resi.validation.verdict import JOINED, NOT_MINING, VALIDATOR, stored_verdict
from resi.validator.state import validator_epochs


def add_status_args(parser: argparse.ArgumentParser) -> None:
    s = parser.add_argument_group("status")
    s.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    s.add_argument("--epochs", type=COUNT, default=6, help="how many recent epochs to show")


async def chain_view(chain: Chain, hotkey: str, timeout: float = 30.0) -> dict:
    """The hotkey's neuron now, and the share of each validator's weights that goes to it."""
    try:
        graph = await asyncio.wait_for(chain.metagraph(), timeout)
        me = graph.by_hotkey(hotkey)
        if me is None:
            return {"block": graph.block, "registered": False}
        validators = [n for n in graph.neurons if n.validator_permit and n.uid != me.uid]
        held = await asyncio.wait_for(chain.weights_of([n.uid for n in validators]), timeout)
    except (ChainError, asyncio.TimeoutError, OSError) as exc:
        return {"error": str(exc) or "no answer"}
    finally:
        await chain.close()
    given = {}
    for n in validators:
        vector = dict(held.get(n.uid) or [])
        total = sum(vector.values())
        if total:
            given[n.uid] = vector.get(me.uid, 0) / total
    return {
        "block": graph.block,
        "registered": True,
        "uid": me.uid,
        "stake": me.stake,
        "rank": me.rank,
        "incentive": me.incentive,
        "emission": me.emission,
        "trust": me.trust,
        "dividends": me.dividends,
        "validator_permit": me.validator_permit,
        "last_update": me.last_update,
        "blocks_since_update": graph.block - me.last_update if me.last_update else None,
        "weights_from_validators": given,
    }


def published_epoch(data_dir: Path, epoch_id: str | None = None) -> dict | None:
    """What a validator wrote of ``epoch_id``'s validated listings (its newest epoch when None), from the
    manifest in its data folder: rows, zipcodes, the listings file's sha256 and the folder; None when nothing."""
    root = data_dir / VALIDATED_FOLDER
    if epoch_id is None:
        names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.endswith(".tmp")) if root.is_dir() else []
        if not names:
            return None
        epoch_id = names[-1]
    folder = root / epoch_id
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
        return {
            "epoch_id": epoch_id,
            "rows": manifest["rows"]["listings"],
            "observations": manifest["rows"]["observations"],
            "zipcodes": len(manifest["zipcodes"]),
            "listings_sha256": manifest["files"][LISTINGS_FILE]["sha256"],
            "folder": str(folder),
        }
    except (OSError, ValueError, KeyError, TypeError):
        return None


def miner_report(data_dir: Path, hotkey: str, chain: dict, epochs: int) -> dict:
    return {
        "role": "miner",
        "hotkey": hotkey,
        "data_dir": str(data_dir),
        "chain": chain,
        "epochs": miner_epochs(data_dir / "checkpoint.db", epochs),
    }


def validator_report(data_dir: Path, hotkey: str, chain: dict, epochs: int) -> dict:
    records, ema = validator_epochs(data_dir / "state.db", epochs)
    done = []
    for record in records:
        results = record.get("results") or []
        weights = record.get("weights") or {}
        said = [(r, stored_verdict(r)) for r in results]
        miners = [
            {
                "uid": r.get("uid"),
                "hotkey": r.get("hotkey"),
                "score": r.get("score", 0.0),
                "ema": r.get("ema", 0.0),
                "weight": r.get("weight", 0.0),
                "verdict": v.kind,
                "why": v.words,
            }
            for r, v in said
            if v.kind not in NOT_MINING
        ]
        done.append(
            {
                "epoch_id": record["epoch_id"],
                "miners": len(miners),
                "scored": sum(1 for m in miners if m["score"] > 0),
                "weights_set": record["weights_set"],
                "weights_set_at": record["weights_set_at"],
                "results_uploaded": record["results_uploaded"],
                "weights": dict(zip(weights.get("uids", []), weights.get("weights", []))),
                "results": miners,
                "validators": [{"uid": r.get("uid"), "hotkey": r.get("hotkey")} for r, v in said if v.kind == VALIDATOR],
                "joined": [{"uid": r.get("uid"), "hotkey": r.get("hotkey")} for r, v in said if v.kind == JOINED],
            }
        )
    leaders = [
        {"uid": uid, "hotkey": hk, "ema": value} for uid, (hk, value) in sorted(ema.items(), key=lambda kv: -kv[1][1])[:10]
    ]
    return {
        "role": "validator",
        "hotkey": hotkey,
        "data_dir": str(data_dir),
        "chain": chain,
        "epochs": done,
        "ema_leaders": leaders,
        "published": last_published(data_dir, records),
    }


def last_published(data_dir: Path, records: list[dict]) -> dict | None:
    """The newest epoch of validated listings in a validator's data folder, with whether it was uploaded (from
    its ``records``, newest first, as ``validator_epochs`` reads them)."""
    published = published_epoch(data_dir)
    if published is not None:
        published["uploaded"] = next((r["results_uploaded"] for r in records if r["epoch_id"] == published["epoch_id"]), None)
    return published


def published_line(published: dict | None) -> str:
    """The last published epoch in one line (``status`` and the status page say it alike)."""
    if published is None:
        return "validated listings: none published yet"
    uploaded = {True: "uploaded", False: "not uploaded yet", None: "upload unknown"}[published.get("uploaded")]
    return (
        f"validated listings: epoch {published['epoch_id']}, {published['rows']} listings in "
        f"{published['zipcodes']} zipcodes, listings.parquet sha256 {published['listings_sha256'][:16]}, "
        f"{uploaded} ({published['folder']})"
    )


def _when(moment: float | None) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


def render(report: dict) -> str:
    chain = report["chain"]
    lines = [f"{report['role']} {report['hotkey']} (records in {report['data_dir']})"]
    if "error" in chain:
        lines.append(f"chain: cannot be read now ({chain['error']})")
    elif not chain["registered"]:
        lines.append(f"chain (block {chain['block']}): NOT registered on the subnet")
    else:
        since = chain["blocks_since_update"]
        lines.append(
            f"chain (block {chain['block']}): uid {chain['uid']}, stake {chain['stake']:.4g}, rank "
            f"{chain['rank']:.4f}, incentive {chain['incentive']:.4f}, emission {chain['emission']:.4g}, "
            f"trust {chain['trust']:.4f}, dividends {chain['dividends']:.4f}, permit "
            f"{'yes' if chain['validator_permit'] else 'no'}, last update "
            f"{'never' if since is None else f'{since} blocks ago'}"
        )
        given = chain["weights_from_validators"]
        if given:
            lines.append(
                "  weights from validators: " + ", ".join(f"uid {uid}: {share:.1%}" for uid, share in sorted(given.items()))
            )
        elif report["role"] == "miner":
            lines.append("  no validator has set weights yet")
    if not report["epochs"]:
        lines.append("no epochs recorded yet")
    if report["role"] == "miner":
        for e in report["epochs"]:
            verified = {True: "verified", False: "not verified", None: ""}[e["upload_verified"]]
            lines.append(
                f"  epoch {e['epoch_id']}: zipcodes {e['zipcodes_done']}/{e['zipcodes']}, rows {e['rows']}, "
                f"uploaded {_when(e['uploaded_at'])} {verified}".rstrip()
                + f", reported {e['reported'] or '-'}"
            )
    else:
        for e in report["epochs"]:
            lines.append(
                f"  epoch {e['epoch_id']}: {e['miners']} miners judged, {e['scored']} paid, "
                f"weights {'set ' + _when(e['weights_set_at']) if e['weights_set'] else 'not set yet'}, results "
                f"{'uploaded' if e['results_uploaded'] else 'not uploaded yet'}"
            )
            for r in e["results"]:
                lines.append(
                    f"    uid {r['uid']:>4}  score {r['score']:.4f}  EMA {r['ema']:.4f}  weight {r['weight']:.4f}  {r['why']}"
                )
            for key, label in (
                ("validators", "validators (they validate; not judged as miners)"),
                ("joined", "registered after the epoch began (not expected to take part)"),
            ):
                if e[key]:
                    lines.append(f"    {label}: " + ", ".join(f"uid {x['uid']}" for x in e[key]))
        if report.get("ema_leaders"):
            lines.append("  EMA leaders: " + ", ".join(f"uid {x['uid']} {x['ema']:.4f}" for x in report["ema_leaders"]))
        lines.append(published_line(report.get("published")))
    return "\n".join(lines)


def status_command(role: str, build_parser, default_dir: str):
    """``status [the neuron's flags]`` of a neuron's CLI: the function that runs it on the words after ``status``."""

    def run(argv: list[str]) -> int:
        parser = build_parser()
        parser.prog += " status"
        add_status_args(parser)
        return status_main(parser.parse_args(argv), role, default_dir)

    return run


def status_main(args: argparse.Namespace, role: str, default_dir: str) -> int:
    """Print the status of the neuron the flags name; 2 when its keys cannot be loaded."""
    shared = SharedConfig.from_args(args)
    try:
        signer = load_signer(shared.wallet_name, shared.wallet_hotkey, shared.wallet_path)
    except KeyLoadError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    chain = asyncio.run(chain_view(open_chain(shared.chain_spec, shared.netuid), signer.hotkey))
    build = miner_report if role == "miner" else validator_report
    report = build(data_dir(args, default_dir, signer.hotkey), signer.hotkey, chain, args.epochs)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0
