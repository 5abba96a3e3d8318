"""Every byte from a miner is hostile: a corpus of files covering every class a validator must survive, and
random corruptions of real files, driven through the real validator path (the sandboxed child process, then
the score) from the downloaded bytes to a ``MinerResult``. Nothing raises, every hostile file ends with a
reason, and the memory it took, measured in a separate process, stays under the bound."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resi.listings.upload import Submission
from resi.validation.evaluate import EpochInputs, finish
from resi.validator.sandbox import Sandbox, SandboxLimits
from tests.hostile import MODIFIED, corpus, honest_table, metadata_for, parquet_of, submission_of
from tests.kit import PYTHON
from tests.validation.epoch_data import CTX, SNAP, P

SCORED = {
    "footer that lies about row counts",
    "addresses as large strings (allowed)",
    "an honest file (control)",
    "honest rows with a listing the snapshot lacks (control)",
}
"""Cases that are not hostile in effect: they earn exactly what they show (controls, and a footer that claims
fewer rows than the file has: only those are read)."""
BOUND_MB = 1.5 * 1024


def write_corpus(folder, only=None):
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, (name, sub) in enumerate(corpus()):
        if only is not None and name not in only:
            continue
        (folder / f"{i:03d}.name").write_text(name)
        (folder / f"{i:03d}.listings").write_bytes(sub.listings)
        (folder / f"{i:03d}.metadata").write_bytes(sub.metadata)
        names.append(name)
    return names


def judge_corpus(folder, *args):
    out = subprocess.run([PYTHON, "-m", "tests.judge_corpus", str(folder), *args], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    return {line["name"]: line for line in lines[:-1]}, lines[-1]


def test_every_hostile_file_ends_in_a_reason_within_the_memory_bound(tmp_path):
    names = write_corpus(tmp_path / "corpus")
    results, memory = judge_corpus(tmp_path / "corpus")
    assert sorted(results) == sorted(names) and len(names) > 60
    for name, result in results.items():
        if name in SCORED:
            continue
        assert result["score"] == 0, (name, result)
        assert result["gate"] or result["reasons"], (name, result)  # a reason, named
    assert results["an honest file (control)"]["score"] == 1.0
    assert results["footer that lies about row counts"]["score"] <= 0.1  # it earns for the one row it shows
    assert all(r["children"] == 1 for r in results.values())  # no file killed the judging process
    assert memory["peak_rss_mb"] + memory["children_peak_rss_mb"] < BOUND_MB, memory


def test_a_programs_peak_memory_is_its_own_not_its_starters():
    """The memory bound is measured by the judging program itself; started from a large process (as pytest is by
    then), it must not report its starter's peak (``ru_maxrss`` does, through vfork and exec)."""
    ballast = b"x" * (800 * 1024 * 1024)  # this process, the starter, now holds 800 MB
    out = subprocess.run(
        [PYTHON, "-c", "from resi.processes import peak_rss_mb; print(peak_rss_mb())"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    del ballast
    assert 5 < float(out.stdout) < 300


def test_a_file_that_needs_more_memory_than_allowed_costs_that_miner_only(tmp_path):
    write_corpus(tmp_path / "corpus", only={"footer that lies about decoded sizes", "an honest file (control)"})
    results, memory = judge_corpus(tmp_path / "corpus", "--memory-mb", "150")
    assert results["footer that lies about decoded sizes"]["gate"] == "memory_limit_exceeded"
    assert results["an honest file (control)"]["score"] == 1.0  # judged right after, by the same process
    assert memory["children_peak_rss_mb"] < 150 + 300  # the child's limit held (its footprint plus 150 MB)


def _sandbox(limits: SandboxLimits | None = None) -> Sandbox:
    sandbox = Sandbox(limits or SandboxLimits())
    sandbox.set_epoch(EpochInputs(CTX, P, SNAP, "0x1"))
    return sandbox


def test_a_judging_that_hangs_or_dies_is_cut_off_and_the_next_miner_is_judged():
    honest = submission_of(parquet_of(honest_table()))

    async def go():
        slow = _sandbox(SandboxLimits(seconds=0.0001))
        timed_out = await slow.prepare(honest)
        await slow.close()
        sandbox = _sandbox()
        first = await sandbox.prepare(honest)
        os.kill(sandbox._proc.pid, signal.SIGKILL)  # the child dies between two miners
        await asyncio.sleep(0.2)
        after_death = await sandbox.prepare(honest)
        children = sandbox.started
        await sandbox.close()
        return timed_out, first, after_death, children

    timed_out, first, after_death, children = asyncio.run(go())
    assert timed_out.gate == "judging_timeout"
    assert first.passed and after_death.passed and children == 2  # a new child took over, nobody was blamed


_LOOP = asyncio.new_event_loop()
_SANDBOX = _sandbox()
GOOD = parquet_of(honest_table(), compression="zstd")
COUNTS = Counter({"08540": 5, "19103": 5})
GOOD_META = metadata_for(GOOD, 10, COUNTS)


def _judge(listings: bytes, metadata: bytes):
    sub = Submission("hk1", 1, listings, metadata, MODIFIED, MODIFIED)
    prepared = _LOOP.run_until_complete(_SANDBOX.prepare(sub))
    return finish(prepared, {}, CTX, SNAP.counts, P)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), min_size=1, max_size=8), st.booleans())
def test_random_corruption_of_a_real_file_never_escapes(flips, fix_sha):
    data = bytearray(GOOD)
    for position, value in flips:
        data[position] = value
    data = bytes(data)
    result = _judge(data, metadata_for(data, 10, COUNTS) if fix_sha else GOOD_META)
    assert result.gate or result.reasons or result.score > 0  # an outcome, never an exception


@settings(max_examples=60, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
        max_leaves=40,
    )
)
def test_random_metadata_never_escapes(document):
    result = _judge(GOOD, json.dumps({"hotkey": "hk1", "junk": document}, allow_nan=True).encode())
    assert result.gate in ("metadata_invalid", "metadata_unreadable")


@pytest.fixture(scope="module", autouse=True)
def _close_sandbox():
    yield
    _LOOP.run_until_complete(_SANDBOX.close())


def test_the_childs_answer_is_a_declared_value_and_anything_else_is_refused():
    """What crosses the process boundary round-trips as the declared ``Answer``; an answer of another shape (an
    extra field, a wrong type, an oversized detail, a negative count) is refused on arrival (then the miner's
    judging counts as crashed), never applied."""
    from resi.validation.evaluate import prepare
    from resi.validator.sandbox import from_wire, to_wire

    sub = submission_of(parquet_of(honest_table()))
    prepared = prepare(sub, CTX, P, SNAP, "0x" + "ab" * 32)
    assert prepared.passed and prepared.truth.valid and prepared.evidence.num_rows  # a whole answer
    body, prints, evidence = to_wire(prepared)
    back = from_wire(sub, body, prints, evidence)
    assert back.truth == prepared.truth and back.row_reasons == prepared.row_reasons and back.gate == prepared.gate
    assert (back.prints == prepared.prints).all() and back.evidence.equals(prepared.evidence)
    assert finish(back, {}, CTX, SNAP.counts, P).as_dict() == finish(prepared, {}, CTX, SNAP.counts, P).as_dict()
    document = json.loads(body)
    for forged in (
        {**document, "extra": 1},
        {**document, "rows_uploaded": "many"},
        {**document, "rows_uploaded": -1},
        {**document, "gate_detail": "x" * 501},
        {**document, "truth": {"valid": 1}},
        {**document, "gate": "g" * 65},
        {**document, "sha256": "not a digest"},
    ):
        with pytest.raises(ValueError):
            from_wire(sub, json.dumps(forged).encode(), prints, evidence)
