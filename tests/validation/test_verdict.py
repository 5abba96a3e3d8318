"""The one renderer of verdicts, on plain result documents: each zero names the rule and the figure that
crossed it, under the rules the validator judged by; names replace hotkeys; a stored verdict is said as
stored."""

from __future__ import annotations

from resi.validation.evaluate import MinerResult, take_roles
from resi.validation.params import ValidationParams
from resi.validation.verdict import JOINED, PAID, VALIDATOR, stored_verdict, verdict


def test_a_paid_result_says_what_it_delivered_and_what_was_checked():
    said = verdict(
        {
            "score": 0.93,
            "completeness": 0.95,
            "rows_uploaded": 210,
            "rows_valid": 205,
            "estimated_fabrication": 0.012,
            "sample_size": 12,
            "sample_confirmed": 11,
        }
    )
    assert said.kind == PAID and said.paid
    assert said.words == (
        "paid: 95% of the expected listings, 5 of 210 rows invalid, 1.2% false or unproven, 11 of 12 refetched rows confirmed"
    )
    assert (
        verdict({"score": 1.0, "completeness": 1.0, "rows_uploaded": 9, "rows_valid": 9}).words
        == "paid: 100% of the expected listings, every row matched the validator's snapshot"
    )


def test_each_zero_names_its_rule_and_figure_under_the_validators_rules():
    false = {"score": 0.0, "truth_factor": 0.0, "estimated_fabrication": 0.092, "sample_size": 22, "sample_bad": 21}
    assert verdict(false).words == "9.2% of the rows false or unproven, more than the 5% allowed (21 of 22 refetched rows false)"
    assert "more than the 3% allowed" in verdict(false, ValidationParams(fabrication_threshold=0.03)).words
    invalid = {
        "score": 0.0,
        "truth_factor": 1.0,
        "quality": 0.0,
        "rows_uploaded": 207,
        "rows_valid": 0,
        "reasons": {"unassigned_zipcode": 200, "range:price": 7},
    }
    assert verdict(invalid).kind == "invalid_rows"
    assert verdict(invalid).words == (
        "207 of 207 rows invalid, more than the 10% allowed; most: 200 in zipcodes not assigned this epoch"
    )
    assert "more than the 20% allowed" in verdict(invalid, ValidationParams(invalid_penalty=5)).words
    gate = {"score": 0.0, "gate": "no_upload", "gate_detail": "nothing under the epoch folder"}
    assert verdict(gate).kind == "no_upload"
    assert verdict(gate).words == "no upload by the deadline (nothing under the epoch folder)"
    odd = verdict({"score": 0.0, "gate": "metadata_unreadable", "gate_detail": "60 KB of nested lists"})
    assert odd.kind == "metadata_unreadable" and odd.words == "metadata unreadable (60 KB of nested lists)"


def test_copies_are_said_with_names_where_the_reader_knows_them():
    copy = {"score": 0.0, "copy": "copy_of:5Fvictim", "truth_factor": 0.0}
    assert verdict(copy).words == "copy of 5Fvictim's upload, which landed first"
    assert verdict(copy, names={"5Fvictim": "miner1"}).words == "copy of miner1's upload, which landed first"
    assert verdict({"score": 0.0, "copy": "copy_tie:5Fother"}).kind == "copy_tie"


def test_validators_and_newcomers_are_not_failing_miners():
    results = [
        MinerResult(0, "v", gate="no_upload"),
        MinerResult(1, "new", gate="no_upload"),
        MinerResult(2, "m", gate="no_upload"),
        MinerResult(3, "permit-miner", score=0.5),
    ]
    take_roles(results, {0: (True, False), 1: (False, True), 2: (False, False), 3: (True, False)})
    kinds = [verdict(r.as_dict()).kind for r in results]
    assert kinds == [VALIDATOR, JOINED, "no_upload", PAID]  # a permit holder that uploads is judged as a miner
    assert [r.score for r in results] == [0.0, 0.0, 0.0, 0.5]  # nothing changes what is paid


def test_a_stored_verdict_is_said_as_stored_with_names():
    doc = {
        "score": 0.0,
        "copy": "copy_of:5Fvictim",
        "verdict": {"kind": "copy_of", "words": "copy of 5Fvictim's upload, which landed first"},
    }
    assert stored_verdict(doc, {"5Fvictim": "miner1"}).words == "copy of miner1's upload, which landed first"
    doc["verdict"] = {"kind": "false_rows", "words": "as the validator said it"}  # its rules, not the defaults
    assert stored_verdict(doc).words == "as the validator said it"
    del doc["verdict"]  # a result from before verdicts were stored is rendered now
    assert stored_verdict(doc).words == verdict(doc).words


def test_a_detail_from_a_miners_file_cannot_smuggle_terminal_escapes():
    said = verdict({"score": 0.0, "gate": "metadata_unreadable", "gate_detail": "bad \x1b[2J\x1b[31mred\r\nline"})
    assert said.words == "metadata unreadable (bad ?[2J?[31mred??line)"
    assert all(c.isprintable() for c in verdict({"score": 0.0, "gate": "x\x07y"}).words)
