"""Hotkeys: loading them from a bittensor wallet, signing bytes, verifying signatures.

This is the only place that touches key material. Messages are always bytes: the SDK hex-decodes
*strings* that start with ``0x``, so a commitment passed as ``str`` could be signed as something else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bittensor.sp_core import Keypair, ss58_decode
from bittensor.wallet import Wallet

DEFAULT_WALLET_PATH = "~/.bittensor/wallets"


class Signer(Protocol):
    """What a neuron needs of its keys: the hotkey's address, the coldkey's address, and signing."""

    @property
    def hotkey(self) -> str: ...

    @property
    def coldkey(self) -> str: ...

    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True)
class KeypairSigner:
    """A signer over an unlocked sr25519 hotkey keypair; the coldkey is only its public address."""

    keypair: Keypair
    coldkey: str

    @property
    def hotkey(self) -> str:
        return str(self.keypair.ss58_address)

    def sign(self, message: bytes) -> bytes:
        if not isinstance(message, (bytes, bytearray)):
            raise TypeError("sign bytes, never str: the SDK hex-decodes strings that start with 0x")
        return bytes(self.keypair.sign(bytes(message)))

    def __repr__(self) -> str:  # never show key material
        return f"KeypairSigner(hotkey={self.hotkey}, coldkey={self.coldkey})"


def load_signer(name: str, hotkey: str, path: str = DEFAULT_WALLET_PATH) -> KeypairSigner:
    """The hotkey of wallet ``name`` under ``path`` (through the SDK's wallet), with its coldkey's address.

    Only the coldkey's public file is read: a miner never needs its coldkey unlocked.
    """
    wallet = Wallet(name=name, hotkey=hotkey, path=str(Path(path).expanduser()))
    try:
        keypair = wallet.hotkey
    except Exception as exc:
        fix = _FIX.format(name=name, hotkey=hotkey, path=path)
        raise KeyLoadError(f"cannot load hotkey {hotkey!r} of wallet {name!r} under {path}: {exc}. {fix}") from None
    try:
        coldkey = wallet.coldkeypub.ss58_address
    except Exception as exc:
        raise KeyLoadError(
            f"cannot load the coldkey address of wallet {name!r} under {path}: {exc}. "
            f"{_FIX.format(name=name, hotkey=hotkey, path=path)}"
        ) from None
    return KeypairSigner(keypair=keypair, coldkey=coldkey)


def create_wallet(path: str | Path, name: str, hotkey: str = "default") -> KeypairSigner:
    """Create an unencrypted wallet (coldkey + one hotkey) on disk, for local networks and tests.

    Mnemonics are never printed. Existing keys are kept, so calling it twice returns the same keys.
    """
    wallet = Wallet(name=name, hotkey=hotkey, path=str(Path(path).expanduser()))
    if not wallet.coldkeypub_file.exists_on_device():
        wallet.create_new_coldkey(use_password=False, suppress=True, overwrite=False)
    if not wallet.hotkey_file.exists_on_device():
        wallet.create_new_hotkey(use_password=False, suppress=True, overwrite=False)
    return load_signer(name, hotkey, str(path))


def is_ss58(address: object) -> bool:
    """Whether ``address`` is a well-formed ss58 address with a valid checksum (never raises)."""
    if not isinstance(address, str) or not 40 <= len(address) <= 60:
        return False
    try:
        return len(ss58_decode(address)) == 32
    except Exception:
        return False


def verify(address: str, message: bytes, signature: bytes) -> bool:
    """True only when ``signature`` is ``address``'s sr25519 signature of ``message``. Never raises."""
    if not isinstance(message, (bytes, bytearray)) or not isinstance(signature, (bytes, bytearray)):
        return False
    if len(signature) != 64 or not is_ss58(address):
        return False
    try:
        return bool(Keypair(ss58_address=address).verify(bytes(message), bytes(signature)))
    except Exception:
        return False


_FIX = (
    "Fix: point --wallet.path, --wallet.name and --wallet.hotkey at the registered wallet, or make its keys: "
    "`btcli wallet create --wallet {name} --wallet-hotkey {hotkey} --wallet-path {path}` (`btcli wallet "
    "new-hotkey` with the same flags when the coldkey exists)"
)


class KeyLoadError(RuntimeError):
    """A wallet's keys could not be read (missing files, wrong path, encrypted hotkey)."""
