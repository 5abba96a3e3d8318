"""Commitments signed by a real wallet verify; everything else is False, never an exception."""

from __future__ import annotations

import pytest

from resi.api import signing
from resi.chain.keys import KeyLoadError, is_ss58, load_signer


def test_wallet_signs_commitment_that_verifies(wallets):
    signer = wallets("miner")
    commitment = signing.miner_status(signer.hotkey, "2025-10-01T16-00-00", 1_700_000_000)
    signature = signing.sign_commitment(signer, commitment)
    assert len(signature) == 128 and not signature.startswith("0x")
    assert signing.verify_commitment(signer.hotkey, commitment, signature)


def test_wallet_reloaded_from_keyfiles_signs_the_same_identity(wallets):
    created = wallets("val", "hot1")
    loaded = load_signer("val", "hot1", str(wallets.path))
    assert loaded.hotkey == created.hotkey and loaded.coldkey == created.coldkey
    commitment = signing.validator_upload(1_700_000_000)
    assert signing.verify_commitment(created.hotkey, commitment, signing.sign_commitment(loaded, commitment))


def test_missing_wallet_is_a_clear_error(tmp_path):
    with pytest.raises(KeyLoadError, match="cannot load hotkey"):
        load_signer("nobody", "default", str(tmp_path))


def test_prefixed_and_plain_hex_both_verify(wallets):
    signer = wallets("m")
    commitment = signing.assignment_current(1_700_000_123)
    sig = signing.sign_commitment(signer, commitment)
    assert signing.verify_commitment(signer.hotkey, commitment, sig)
    assert signing.verify_commitment(signer.hotkey, commitment, "0x" + sig)
    assert signing.verify_commitment(signer.hotkey, commitment, "0X" + sig.upper())


def test_tampered_message_fails(wallets):
    signer = wallets("m")
    commitment = signing.assignment_current(1_700_000_123)
    sig = signing.sign_commitment(signer, commitment)
    assert not signing.verify_commitment(signer.hotkey, signing.assignment_current(1_700_000_124), sig)


def test_other_keys_signature_fails(wallets):
    alice, bob = wallets("alice"), wallets("bob")
    commitment = signing.validator_access(1_700_000_000)
    assert not signing.verify_commitment(alice.hotkey, commitment, signing.sign_commitment(bob, commitment))


@pytest.mark.parametrize(
    "bad",
    ["", "0x", "zz" * 64, "ab" * 63, "ab" * 65, "0x" + "g" * 128, None, 12345, b"\x00" * 64, ["ab"]],
)
def test_malformed_signature_is_false(wallets, bad):
    signer = wallets("m")
    assert signing.verify_commitment(signer.hotkey, "anything", bad) is False


@pytest.mark.parametrize(
    "address",
    ["", "5abc", "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694tz", "x" * 48, None, 42],
)
def test_bad_ss58_is_false(wallets, address):
    signer = wallets("m")
    commitment = signing.assignment_current(1_700_000_000)
    assert signing.verify_commitment(address, commitment, signing.sign_commitment(signer, commitment)) is False
    assert not is_ss58(address)


def test_signing_a_str_is_refused(wallets):
    signer = wallets("m")
    with pytest.raises(TypeError):
        signer.sign("0xdeadbeef")


def test_commitment_formats_match_the_spec():
    assert signing.assignment_current(1) == "zipcode:assignment:current:1"
    assert signing.miner_status("HK", "E", 2) == "miner:status:HK:E:2"
    assert signing.miner_s3_access("CK", "HK", 3) == "s3:data:access:CK:HK:3"
    assert signing.validator_upload(4) == "s3:validator:upload:4"
    assert signing.validator_access(5) == "s3:validator:access:5"
    assert signing.validator_miner_access("MH", 6) == "s3:validator:miner:MH:6"
    assert signing.epoch_assignment("E", 7) == "zipcode:validation:E:7"
