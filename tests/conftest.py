"""Shared fixtures: real servers on loopback and free ports, started here and stopped here."""

from __future__ import annotations

import os

import pytest

from resi.chain.keys import create_wallet
from resi.storage.seaweed import LocalS3
from tests.kit import ROOT

TEST_BUCKET = "resi-test-bucket"

# Subprocesses started by tests import the checkout, whatever the current folder.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))


@pytest.fixture(scope="session")
def local_s3(tmp_path_factory) -> LocalS3:
    """One SeaweedFS for the whole session (about 3 s to start); tests use their own key prefixes."""
    s3 = LocalS3(tmp_path_factory.mktemp("seaweed")).start(buckets=[TEST_BUCKET])
    yield s3
    s3.stop()


@pytest.fixture
def wallets(tmp_path):
    """A factory of real bittensor wallets in a temporary folder: ``wallets("miner1")`` -> signer."""
    root = tmp_path / "wallets"

    def make(name: str, hotkey: str = "default"):
        return create_wallet(root, name, hotkey)

    make.path = root
    return make
