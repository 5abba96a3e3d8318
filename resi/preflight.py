"""What a neuron checks before its loop, and all that ``--check`` does: its data folder is writable, the chain
answers, the hotkey is registered on the netuid (with a validator permit, for validators), the Resi API
answers and accepts a signed call from the hotkey, and this machine's clock agrees with the API's.

Each check gives one line: what it found, or what is wrong and the fix. A neuron with any problem exits with
code 2 (pm2 shows the line in its logs); ``--check`` prints every line and exits 0 or 2.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from resi.api.client import ResiApiClient
from resi.api.errors import ApiError
from resi.chain import Chain, ChainError, KeypairSigner, Signer
from resi.chain.registration import registration_problem
from resi.config import SharedConfig, data_dir
from resi.constants import MAX_CLOCK_SKEW_SECONDS
from resi.neuron import log_to_folder, start


@dataclass(frozen=True)
class Finding:
    ok: bool
    line: str


def check_folder(folder: Path, flag: str, make: bool = True) -> Finding:
    """The folder exists (made if need be) and a file can be written in it. ``make`` False (``--check``):
    nothing is made or written; a missing folder is fine when the folder it would be made in is writable."""
    if not make and not folder.exists():
        parent = next((p for p in folder.parents if p.exists()), None)
        if parent is not None and parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
            return Finding(True, f"data folder {folder} does not exist yet; the neuron will make it ({parent} is writable)")
        return Finding(
            False,
            f"data folder {folder} cannot be made ({parent} is not writable): give a writable "
            f"folder with {flag} or fix its permissions",
        )
    probe = folder / f".write-check-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        return Finding(
            False, f"cannot write to {folder} ({exc.strerror or exc}): give a writable folder with {flag} or fix its permissions"
        )
    return Finding(True, f"data folder {folder} is writable")


async def check_chain(chain: Chain, spec: str, hotkey: str, *, validator: bool, hint: str, timeout: float = 30.0) -> Finding:
    """The chain answers with the subnet's metagraph, and the hotkey may take part."""
    try:
        graph = await asyncio.wait_for(chain.metagraph(), timeout)
    except (ChainError, asyncio.TimeoutError, OSError) as exc:
        reason = str(exc) or f"no answer within {timeout:g} s"
        return Finding(
            False,
            f"cannot read netuid {chain.netuid} from the chain at {spec} ({reason}): check "
            "--subtensor.network / --subtensor.chain_endpoint and the connection, then start again",
        )
    finally:
        await chain.close()
    problem = registration_problem(graph, hotkey, validator=validator, hint=hint)
    me = graph.by_hotkey(hotkey)
    if problem or me is None:
        return Finding(False, problem or f"hotkey {hotkey} is not registered on netuid {graph.netuid} at {spec}")
    role = "validator permit" if validator else "registered"
    return Finding(True, f"hotkey {hotkey} is uid {me.uid} on netuid {graph.netuid} at {spec} ({role})")


async def check_api(
    api: ResiApiClient, hotkey: str, *, validator: bool, registered: bool = False, patience: float = 60.0, pause: float = 10.0
) -> list[Finding]:
    """The API answers, accepts a signed call from the hotkey, and its clock agrees with this machine's.
    ``registered``: the chain says the hotkey is; then an API that does not know it yet (its view of the
    metagraph lags a fresh registration) is asked again every ``pause`` seconds for up to ``patience``."""
    url = api.base_url
    try:
        await api.healthcheck()
    except ApiError as exc:
        return [
            Finding(False, f"the Resi API at {url} does not answer ({exc}): check --api.url and the connection, then start again")
        ]
    waited = 0.0
    while True:
        try:
            if validator:
                await api.validator_access(force=True)
            else:
                await api.current_assignment()
        except ApiError as exc:
            if exc.status in (401, 403) and registered and waited < patience and _unknown_hotkey(exc):
                if not waited:
                    logger.info(
                        f"the Resi API does not know hotkey {hotkey} yet (a fresh registration?); "
                        f"asking again for up to {patience:g} s"
                    )
                await asyncio.sleep(pause)
                waited += pause
                continue
            if exc.status in (401, 403):
                return [
                    Finding(
                        False,
                        f"the Resi API at {url} refuses hotkey {hotkey} ({exc}): it must be "
                        "registered on the subnet the API serves (check --netuid and --api.url)",
                    )
                ]
            if exc.status is None or exc.retryable:
                return [
                    Finding(
                        False, f"the Resi API at {url} does not answer signed calls ({exc}): try again later, or check --api.url"
                    )
                ]
            # Any other refusal (no epoch open right now, ...) came after the signature was read: accepted.
        break
    skew = api.clock_offset
    findings = [Finding(True, f"the Resi API at {url} answers and accepts hotkey {hotkey}")]
    if abs(skew) > MAX_CLOCK_SKEW_SECONDS:
        findings.append(
            Finding(
                False,
                f"this machine's clock is {abs(skew):.0f} s {'behind' if skew > 0 else 'ahead of'}"
                " the API's: sync it (`sudo timedatectl set-ntp true`), then start again",
            )
        )
    else:
        findings.append(Finding(True, f"clock within {abs(skew):.0f} s of the API's"))
    return findings


def _unknown_hotkey(error: ApiError) -> bool:
    return any("not registered" in m or "not validator" in m for m in error.messages)


async def run_checks(
    shared: SharedConfig,
    signer: Signer,
    chain: Chain,
    folder: Path,
    folder_flag: str,
    *,
    validator: bool,
    timeout: float = 10.0,
    make: bool = True,
) -> list[Finding]:
    """Every check, in the order a fix is made: folder, chain and registration, API, clock. ``make`` False:
    the data folder is not made (``--check`` leaves no trace)."""
    findings = [check_folder(folder, folder_flag, make)]
    on_chain = await check_chain(
        chain, shared.chain_spec, signer.hotkey, validator=validator, hint=shared.btcli_flags, timeout=3 * timeout
    )
    findings.append(on_chain)
    async with ResiApiClient(
        shared.api_url, signer, timeout=min(shared.api_timeout, timeout), max_attempts=2, backoff_base=0.5
    ) as api:
        findings.extend(await check_api(api, signer.hotkey, validator=validator, registered=on_chain.ok))
    return findings


def outcome(findings: list[Finding], only_check: bool) -> int | None:
    """The exit code (``--check``: every line printed; otherwise the problems logged, 2 if any), or None
    when the neuron may start."""
    problems = [f for f in findings if not f.ok]
    if only_check:
        for finding in findings:
            print(("ok     " if finding.ok else "FAILED ") + finding.line, flush=True)
        return 2 if problems else 0
    for finding in problems:
        logger.error(finding.line)
    return 2 if problems else None


@dataclass(frozen=True)
class Ready:
    """A neuron past its start-up checks: what its loop is built from."""

    shared: SharedConfig
    signer: KeypairSigner
    data_dir: Path
    chain: Chain


def begin(
    args: argparse.Namespace, role: str, default_dir: str, chain_for: Callable[[SharedConfig, KeypairSigner], Chain]
) -> Ready | int:
    """Both neurons' start-up: logging and keys, the checks (``--check`` stops after them), then the log file;
    the exit code when the neuron must not go on."""
    started = start(args, role)
    if started is None:
        return 2
    shared, signer = started
    folder = data_dir(args, default_dir, signer.hotkey)
    chain = chain_for(shared, signer)
    findings = asyncio.run(
        run_checks(shared, signer, chain, folder, f"--{role}.data_dir", validator=role == "validator", make=not args.check)
    )
    code = outcome(findings, args.check)
    if code is not None:
        return code
    log_to_folder(shared, folder, role)
    return Ready(shared, signer, folder, chain)
