"""The whole subnet on the local network: honest miners, every kind of cheater and hostile miner, two
validators. ``python -m resi.localnet`` itself is run (as a user would), for three validated epochs of thirty
seconds: every validator sets weights in every epoch, honest miners keep their scores, every cheater and
every hostile file scores 0 with its reason; after the first epoch a new hotkey takes an honest miner's uid."""

from __future__ import annotations

import html
import json
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from resi.api.signing import sign_manifest, verify_manifest
from resi.chain.keys import load_signer
from resi.chain.store import SimulatedChainStore
from resi.chain.weights import conform
from resi.data.mirror import Mirror
from resi.listings.validated import LISTINGS_FILE, MANIFEST_FILE, OBSERVATIONS_FILE, check_files
from resi.localnet.cheaters import STRATEGIES
from resi.localnet.network import VALIDATOR_BUCKET
from resi.storage import StorageError
from resi.storage.bucket import BucketReader, BucketSettings
from resi.storage.seaweed import LocalS3
from tests.kit import PYTHON, ROOT

pytestmark = pytest.mark.slow


EXPECTED = {  # cheater -> the reason (or reasons) its results must show, and its score is 0
    "nothing": "no_upload",
    "wrong_nonce": "wrong_nonce",
    "fabricate": "not_found_at_source",
    "pad": "duplicate_address",
    "unassigned": "unassigned_zipcode",
    "copy": "copy_of",
    "bomb": "too_many_rows",
    "stale": ("unassigned_zipcode", "no_upload"),  # nothing to re-send while it has no earlier epoch
    "sold": "stale",
    "sold_active": "stale",
    "unprovable": "refused_by_source",
    "bias": "mismatch:price",
    "late": "no_upload",
    "dom_shift": "mismatch:days_on_market",
    "sqft_nudge": "mismatch:sqft",
    "zip_sqft": "mismatch:sqft",
    "wrong_page": "mismatch:source_url",
    "respell_copy": "copy_of",
    "nested_metadata": "metadata_unreadable",
    "expanding_column": "decoded_size_over_budget",
    "nan_values": "range:price",
    "bad_utf8": "invalid_utf8",
    "impossible_times": "format:scraped_timestamp",
    "huge_ids": "length:listing_id",
}


@pytest.fixture(scope="module")
def localnet(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("localnet")
    out = subprocess.run(
        [
            PYTHON,
            "-m",
            "resi.localnet",
            "--run-dir",
            str(run_dir),
            "--epoch-minutes",
            "0.5",
            "--epochs",
            "3",
            "--cheaters",
            "all",
            "--scale",
            "0.02",
            "--block-seconds",
            "1",
            "--replace-after",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    return run_dir, out


def test_localnet_runs_three_epochs_and_stops_cleanly(localnet):
    run_dir, out = localnet
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert len(summary["epochs"]) == 3 and summary["failed_processes"] == []
    assert "epoch " in out.stdout and "verdict: honest miners" in out.stdout  # the tables were printed
    for epoch in summary["epochs"]:
        assert {"epoch_id", "miners", "validators"} <= set(epoch)
        for miner in epoch["miners"]:
            assert {"hotkey", "cheater", "rows_uploaded", "rows_valid", "score", "weight", "reasons"} <= set(miner)
        assert all(v["weights_set"] for v in epoch["validators"])


def test_every_cheater_scores_zero_with_its_reason(localnet):
    run_dir, _ = localnet
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(EXPECTED) == set(STRATEGIES)
    for epoch in summary["epochs"]:
        cheaters = {m["cheater"]: m for m in epoch["miners"] if m["cheater"]}
        assert set(cheaters) == set(EXPECTED)
        for name, reason in EXPECTED.items():
            assert cheaters[name]["score"] == 0, (name, cheaters[name])
            reasons = (reason,) if isinstance(reason, str) else reason
            assert any(k.startswith(reasons) for k in cheaters[name]["reasons"]), (name, cheaters[name]["reasons"])
        honest = [m for m in epoch["miners"] if m["cheater"] is None]
        assert sum(m["weight"] for m in honest) >= 0.99
    late_log = (run_dir / "logs" / "cheat-late.log").read_text()
    assert "refused by S3" in late_log and "ACCEPTED" not in late_log  # the expired policy stopped it at S3


def test_the_new_rules_take_nothing_from_honest_miners(localnet):
    """Before these rules an honest miner was credited with every valid row; now a row earns only when
    proven. Every honest row is proven (or extrapolated at a confirmed rate of 1), so the score is exactly the
    one crediting every valid row would give."""
    run_dir, _ = localnet
    summary = json.loads((run_dir / "summary.json").read_text())
    for epoch in summary["epochs"]:
        for m in (m for m in epoch["miners"] if m["cheater"] is None and m["successor_of"] is None):
            assert m["rows_valid"] > 0 and m["rows_credited"] == m["rows_valid"], m
            assert m["truth_factor"] == 1.0 and m["quality"] == 1.0, m
            assert m["score"] == round(m["completeness"], 6) and m["score"] > 0.9, m


def test_validators_set_identical_weights(localnet):
    run_dir, _ = localnet
    summary = json.loads((run_dir / "summary.json").read_text())
    store = SimulatedChainStore(run_dir / "chain.db")
    on_chain = {}
    for r in store.weights(46):
        on_chain.setdefault(r["hotkey"], []).append((r["uids"], r["weights"]))
    uid_of = {n.hotkey: n.uid for n in store.neurons(46)}
    for epoch in summary["epochs"]:
        first, second = epoch["validators"]
        vector = [first["weights"][k] for k in ("uids", "weights")]
        assert vector == [second["weights"][k] for k in ("uids", "weights")] and vector[0]
        assert all(v["weights"]["set_at"] and v["weights"]["block"] for v in epoch["validators"])  # and when
        share = dict(zip(*vector))  # what a miner reads as its weight is its share of that vector
        assert all(m["weight"] == share.get(m["uid"], 0.0) for m in epoch["miners"])
        for v in epoch["validators"]:  # and both put it on the chain, as the chain stores it (u16)
            vector = conform(first["weights"]["uids"], first["weights"]["weights"], store.params(46), uid_of[v["hotkey"]])
            assert vector in on_chain[v["hotkey"]]
    for text in (run_dir / "logs").glob("validator*.log"):
        assert "Traceback" not in text.read_text()


def test_a_hotkey_that_takes_over_a_uid_starts_from_zero(localnet):
    """Its EMA restarts at 0, and until the validators counted an epoch with it, no weight they set gave the
    uid anything from the EMA the old hotkey had earned."""
    run_dir, _ = localnet
    summary = json.loads((run_dir / "summary.json").read_text())
    rows = [(e["epoch_id"], m) for e in summary["epochs"] for m in e["miners"] if m["successor_of"]]
    assert len(rows) >= 2 and rows[0][1]["uid"] == rows[-1][1]["uid"]
    uid = rows[0][1]["uid"]
    alpha = json.loads(next((run_dir / "validators").glob("*/results/*.json")).read_text())["params"]["ema_alpha"]
    previous = 0.0
    for _, m in rows:
        assert m["ema"] == pytest.approx(alpha * m["score"] + (1 - alpha) * previous, abs=1e-8), m
        previous = m["ema"]
    assert rows[-1][1]["score"] > 0.9  # and it earns like any honest miner once it delivers
    store = SimulatedChainStore(run_dir / "chain.db")
    taken_at = next(n.registered_at for n in store.neurons(46) if n.uid == uid)
    earned = next(epoch_id for epoch_id, m in rows if m["ema"] > 0)  # the first epoch that gave it something
    for folder in (run_dir / "validators").iterdir():
        hotkey = json.loads((folder / "results" / f"{rows[-1][0]}.json").read_text())["validator"]
        with sqlite3.connect(folder / "state.db") as db:
            counted = dict(db.execute("SELECT epoch_id, finished_at FROM epochs").fetchall())
        after = [r for r in store.weights(46) if r["hotkey"] == hotkey and r["block"] > taken_at]
        for r in after:
            if r["created_at"] < counted[earned]:  # however many the rate limit let through meanwhile
                assert uid not in r["uids"], r
        latest = [r for r in after if r["created_at"] > counted[rows[-1][0]]]
        assert latest and all(uid in r["uids"] for r in latest)  # once counted, it is weighted


def _published(run_dir: Path) -> dict[tuple[str, str], dict[str, bytes]]:
    """(validator hotkey, epoch) -> file name -> bytes of every validated file in S3 (SeaweedFS started again
    on the run's data after the run, read as a consumer reads it: boto3 with the store's keys)."""
    s3 = LocalS3(run_dir / "s3").start(buckets=[VALIDATOR_BUCKET])
    try:
        reader = BucketReader(BucketSettings(VALIDATOR_BUCKET, s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key))
        deadline = time.monotonic() + 60
        while True:  # a SeaweedFS just started may answer 500 until its volumes are loaded
            try:
                keys = [key for key, _ in reader.keys("validators/") if "/validated/" in key]
                reader.read(keys[0], 1 << 26)
                break
            except StorageError:
                assert time.monotonic() < deadline, "the restarted SeaweedFS never served a file"
                time.sleep(0.5)
        out: dict = {}
        for key in keys:
            _, hotkey, epoch_id, _, name = key.split("/")
            out.setdefault((hotkey, epoch_id), {})[name] = reader.read(key, 1 << 26)
        return out
    finally:
        s3.stop()


def test_validators_publish_the_same_validated_listings_the_honest_miners_proved(localnet):
    """For every counted epoch both validators uploaded the validated files; the manifests verify, the files are
    the ones they name and byte-identical between the validators; the listings are exactly the honest miners'
    (every honest row is proven here), with the honest values: no cheater's false row or invented listing."""
    run_dir, _ = localnet
    summary = json.loads((run_dir / "summary.json").read_text())
    files = _published(run_dir)
    miners = run_dir / "miners"
    for epoch in summary["epochs"]:
        epoch_id = epoch["epoch_id"]
        shas = set()
        for v in epoch["validators"]:
            got = files[(v["hotkey"], epoch_id)]
            manifest = json.loads(got.pop(MANIFEST_FILE))
            assert verify_manifest(manifest) and manifest["validator"] == v["hotkey"], epoch_id
            assert check_files(manifest, got) is None and manifest["epoch_id"] == epoch_id
            assert v["published"]["listings_sha256"] == manifest["files"][LISTINGS_FILE]["sha256"]
            shas.add((manifest["files"][LISTINGS_FILE]["sha256"], manifest["files"][OBSERVATIONS_FILE]["sha256"]))
        assert len(shas) == 1, epoch_id  # the same verdicts, the same bytes
        listings = pq.read_table(pa.BufferReader(got[LISTINGS_FILE])).to_pylist()
        honest = {}
        for m in epoch["miners"]:
            path = miners / m["name"] / "epochs" / epoch_id / "listings.parquet"
            if m["cheater"] is None and path.exists():
                for r in pq.read_table(path).to_pylist():
                    honest.setdefault(r["listing_id"], r)
        assert {r["listing_id"] for r in listings} == set(honest), epoch_id
        for r in listings:
            mine = honest[r["listing_id"]]
            assert all(r[k] == mine[k] for k in ("sqft", "address", "source_url", "bedrooms")), r
            assert r["miners_proving"] >= 1 and r["miners_delivering"] >= r["miners_proving"]
        cheat = miners / "cheat-zip_sqft" / "epochs" / epoch_id / "listings.parquet"
        if cheat.exists():
            false = {(r["listing_id"], r["sqft"]) for r in pq.read_table(cheat).to_pylist()} - {
                (i, r["sqft"]) for i, r in honest.items()
            }
            assert false and not false & {(r["listing_id"], r["sqft"]) for r in listings}


def test_the_resi_data_command_it_prints_works_on_what_it_published(localnet):
    """The run ends with a resi-data command; run as printed, it mirrors every counted epoch of both validators
    (their permits read from the run's chain), refuses nothing, and its market matches the published files."""
    run_dir, out = localnet
    line = next(line for line in (out.stdout + out.stderr).splitlines() if "query them: " in line)
    for part in line.split("query them: ", 1)[1].split(" && "):
        done = subprocess.run(shlex.split(part), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    assert "zipcode" in done.stdout and "listings" in done.stdout  # the printed query's table
    mirror = run_dir / "data"
    assert json.loads((mirror / "rejected.json").read_text()) == {}
    summary = json.loads((run_dir / "summary.json").read_text())
    mirrored = {(m["epoch_id"], m["validator"]) for m in Mirror(mirror).manifests()}
    assert all((e["epoch_id"], v["hotkey"]) in mirrored for e in summary["epochs"] for v in e["validators"])
    epoch = summary["epochs"][-1]
    published = pq.read_table(run_dir / "validators" / "validator1" / "validated" / epoch["epoch_id"] / LISTINGS_FILE).to_pylist()
    zipcode = Counter(r["zipcode"] for r in published).most_common(1)[0][0]
    market = subprocess.run(
        [PYTHON, "-m", "resi.data", "--mirror", str(mirror), "market", "--zip", zipcode, "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    row = next(r for r in json.loads(market.stdout) if r["epoch_id"] == epoch["epoch_id"])
    current = [r["price"] for r in published if r["zipcode"] == zipcode and r["listing_status"] != "sold"]
    assert row["inventory"] == len(current) and row["median_price"] == pytest.approx(statistics.median(current))


def test_resi_data_refuses_a_tampered_a_truncated_and_an_unpermitted_publication(localnet, tmp_path):
    """The run's publications, one file flipped, one cut short, and one epoch signed by a miner's hotkey (no
    validator permit on the run's chain): each named and kept out; the rest mirrored."""
    run_dir, _ = localnet
    copy = tmp_path / "validators"
    shutil.copytree(run_dir / "validators", copy, ignore=shutil.ignore_patterns("*.db*", "*.log", "results"))
    first, second = (sorted((copy / v / "validated").iterdir()) for v in ("validator1", "validator2"))
    tampered = first[-1] / LISTINGS_FILE
    raw = bytearray(tampered.read_bytes())
    raw[len(raw) // 3] ^= 1
    tampered.write_bytes(bytes(raw))
    truncated = second[-1] / OBSERVATIONS_FILE
    truncated.write_bytes(truncated.read_bytes()[:-64])
    miner = load_signer("miner1", "default", str(run_dir / "wallets"))
    forged = copy / "miner1" / "validated" / first[0].name
    shutil.copytree(first[0], forged)
    (forged / MANIFEST_FILE).write_text(json.dumps(sign_manifest(miner, json.loads((forged / MANIFEST_FILE).read_text()))))
    out = subprocess.run(
        [
            PYTHON,
            "-m",
            "resi.data",
            "--mirror",
            str(tmp_path / "mirror"),
            "sync",
            "--from",
            str(copy),
            "--subtensor.chain_endpoint",
            f"sim:{run_dir / 'chain.db'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    why = json.loads((tmp_path / "mirror" / "rejected.json").read_text())
    assert why == {
        str(first[-1]): f"{LISTINGS_FILE} is not the file the manifest names (sha256 differs)",
        str(second[-1]): why[str(second[-1])],
        str(forged): why[str(forged)],
    }
    assert why[str(second[-1])].startswith(f"{OBSERVATIONS_FILE} has") and why[str(second[-1])].endswith("(truncated)")
    assert why[str(forged)].startswith(f"signed by {miner.hotkey}, which is not a trusted validator")
    mirrored = len(Mirror(tmp_path / "mirror").manifests())
    assert mirrored == len(first) + len(second) - 2 and f"{mirrored} new published epochs, 0 already" in out.stderr


def _status(run_dir, script: str, name: str, folder: str) -> dict:
    flag = "--miner.data_dir" if script == "miner.py" else "--validator.data_dir"
    out = subprocess.run(
        [
            PYTHON,
            str(ROOT / "neurons" / script),
            "status",
            "--wallet.name",
            name,
            "--wallet.path",
            str(run_dir / "wallets"),
            "--subtensor.chain_endpoint",
            f"sim:{run_dir / 'chain.db'}",
            flag,
            str(run_dir / folder / name),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def test_status_says_what_each_neuron_did_and_what_the_chain_says(localnet):
    run_dir, _ = localnet
    miner = _status(run_dir, "miner.py", "miner1", "miners")
    chain = miner["chain"]
    assert chain["registered"] and chain["incentive"] > 0 and chain["last_update"] == 0
    assert len(chain["weights_from_validators"]) == 2 and all(w > 0 for w in chain["weights_from_validators"].values())
    done = [e for e in miner["epochs"] if e["reported"] == "COMPLETED"]
    assert len(done) >= 3 and all(e["rows"] > 0 and e["zipcodes_done"] == e["zipcodes"] and e["upload_verified"] for e in done)
    validator = _status(run_dir, "validator.py", "validator1", "validators")
    assert validator["chain"]["validator_permit"] and validator["chain"]["blocks_since_update"] is not None
    counted = validator["epochs"][:3]  # newest first; an older partial epoch (the network started in it) set none
    assert len(counted) == 3 and all(e["weights_set"] and e["weights_set_at"] and e["miners"] > 10 for e in counted)
    latest = validator["epochs"][0]
    kinds = {r["hotkey"]: r["verdict"] for r in latest["results"]}
    assert kinds[miner["hotkey"]] == "paid"  # an honest miner scores
    assert {"copy_of", "no_upload", "false_rows", "invalid_rows"} <= set(kinds.values())
    description = json.loads((run_dir / "network.json").read_text())
    validators = {p["hotkey"] for p in description["participants"] if p["role"] == "validator"}
    assert {v["hotkey"] for v in latest["validators"]} == validators and not validators & set(kinds)  # apart
    assert validator["ema_leaders"] and validator["ema_leaders"][0]["ema"] > 0
    published = validator["published"]  # the newest epoch's validated listings, written and uploaded
    assert published["epoch_id"] == validator["epochs"][0]["epoch_id"] and published["rows"] > 0
    assert published["uploaded"] is True and len(published["listings_sha256"]) == 64
    text = subprocess.run(
        [
            PYTHON,
            str(ROOT / "neurons" / "validator.py"),
            "status",
            "--wallet.name",
            "validator1",
            "--wallet.path",
            str(run_dir / "wallets"),
            "--subtensor.chain_endpoint",
            f"sim:{run_dir / 'chain.db'}",
            "--validator.data_dir",
            str(run_dir / "validators" / "validator1"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "miners judged" in text and "copy of " in text and "EMA leaders" in text
    assert "validators (they validate; not judged as miners): uid " in text
    assert f"validated listings: epoch {published['epoch_id']}, {published['rows']} listings" in text


def test_the_run_ends_with_a_verdict_line_and_summary_txt(localnet):
    """Each epoch's table ends with its verdict line; the run ends with one line; summary.txt holds both."""
    run_dir, out = localnet
    summary = json.loads((run_dir / "summary.json").read_text())
    text = (run_dir / "summary.txt").read_text()
    for epoch in summary["epochs"]:  # a successor that registered during an epoch is not counted as unpaid
        honest = sum(1 for m in epoch["miners"] if m["cheater"] is None and m["verdict"] != "joined")
        joined = [m["name"] for m in epoch["miners"] if m["verdict"] == "joined"]
        table = text.split(f"epoch {epoch['epoch_id']}\n", 1)[1].split("\n\n", 1)[0]
        line = table.strip().splitlines()[-1].strip()
        assert (
            line.startswith(f"verdict: honest miners {honest}/{honest} paid, ")
            and f"cheaters {len(STRATEGIES)}/{len(STRATEGIES)} at 0 (" in line
        ), line
        assert ("registered during the epoch: " + ", ".join(joined) in line) if joined else "registered" not in line
    run_line = text.strip().splitlines()[-1]
    assert run_line.startswith("run verdict: 3 epochs counted; honest miners paid in every epoch")
    assert f"all {len(STRATEGIES)} cheaters at 0 in every epoch" in run_line
    assert "weights set by every validator in every epoch" in run_line
    assert run_line in out.stdout  # printed as well


def test_every_output_says_a_verdict_in_the_same_words(localnet):
    """The terminal (summary), the results file, ``status`` and the page (rendered by the function the page
    server calls) say each miner's verdict of the same epoch in the words of the one renderer."""
    from resi.pages import network_page
    from resi.validation.verdict import stored_verdict

    run_dir, _ = localnet
    summary = json.loads((run_dir / "summary.json").read_text())
    epoch = summary["epochs"][-1]
    description = json.loads((run_dir / "network.json").read_text())
    names = {p["hotkey"]: p["name"] for p in description["participants"]}
    results = json.loads((run_dir / "validators" / "validator1" / "results" / f"{epoch['epoch_id']}.json").read_text())
    docs = {m["hotkey"]: m for m in results["miners"]}
    terminal = {m["hotkey"]: m["why"] for m in epoch["miners"]}
    assert terminal == {hk: stored_verdict(docs[hk], names).words for hk in terminal}
    assert all(docs[hk]["verdict"]["words"] == stored_verdict(docs[hk]).words for hk in terminal)
    status = _status(run_dir, "validator.py", "validator1", "validators")
    said = next(e for e in status["epochs"] if e["epoch_id"] == epoch["epoch_id"])
    assert {r["hotkey"]: r["why"] for r in said["results"]} == {hk: stored_verdict(docs[hk]).words for hk in terminal}
    page = network_page(description, run_dir)  # validator1's epochs: the newest in full, the older folded
    for words in terminal.values():
        assert f"<td class='l reason'>{html.escape(words)}</td>" in page, words
