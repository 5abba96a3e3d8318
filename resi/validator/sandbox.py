"""Judging miners' files in a child process, so that whatever a file makes the decoder do happens there.

Files come from miners: a page header can make pyarrow allocate gigabytes, a bug in a decoder can crash the
process. The validator hands each miner's bytes to a child process (``python -m resi.validator.sandbox``, one at
a time, reused across miners) that runs :func:`resi.validation.evaluate.prepare`:

- the child limits its own address space (``RLIMIT_AS``: its footprint after start-up plus ``memory_mb``) and
  uses the system allocator, so an allocation past the limit fails in the child, where ``prepare`` turns it
  into the miner's reason ``memory_limit_exceeded``;
- a child that takes longer than ``seconds`` is killed (``judging_timeout``); one that dies (killed, crashed)
  gives ``judging_crashed``; either way the next miner gets a new child;
- the child's answer is a declared value (:class:`Answer`, JSON validated on arrival), the fingerprints as raw
  bytes and the dataset's evidence as an Arrow IPC stream of a declared schema, never pickle: a child
  compromised by a file cannot run code in the validator, and its answer is only ever applied to the miner it
  was asked about.

The epoch's inputs (context, parameters, the snapshot indexed once by the parent, block hash) go to every new
child once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pickle
import struct
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from loguru import logger
from pydantic import BaseModel, ConfigDict, Field

from resi.listings.upload import Submission
from resi.validation.dataset import EVIDENCE_SCHEMA
from resi.validation.evaluate import EpochInputs, Prepared, index_of, prepare
from resi.validation.truth import TruthResult

_FRAME = struct.Struct("!I")
MAX_ANSWER_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class SandboxLimits:
    memory_mb: int = 1024
    """Address space the child may use beyond its footprint after start-up (interpreter, pyarrow)."""
    seconds: float = 120.0
    """Time one miner's judging may take."""
    workers: int = 2
    """Children judging miners side by side (one per core to spare; each may use ``memory_mb``)."""


# --- the wire between the two processes ---------------------------------------------------------------------


class TruthAnswer(BaseModel):
    """The part of the truth check the child computes (``truth.TruthResult`` before the refetch)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    matched_by_zip: dict[str, int]
    bad: dict[str, int]
    snapshot_bad: int
    valid: int
    pool_by_zip: dict[str, int]
    pooled: dict[str, int]
    sample_rows: dict[str, dict[str, Any]]

    def result(self) -> TruthResult:
        return TruthResult(
            matched_by_zip=Counter(self.matched_by_zip),
            bad=Counter(self.bad),
            snapshot_bad=self.snapshot_bad,
            valid=self.valid,
            pool_by_zip=Counter(self.pool_by_zip),
            pooled=Counter(self.pooled),
            sample_rows=dict(self.sample_rows),
        )


class Answer(BaseModel):
    """The child's answer about one miner, as it crosses the process boundary (JSON, validated on arrival: an
    answer that is not this shape is a crashed judging). The fingerprints and the evidence follow it as their
    own frames."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    gate: str | None = Field(max_length=64)
    gate_detail: str = Field(max_length=500)
    sha256: str | None = Field(pattern=r"^[0-9a-f]{64}$")
    rows_uploaded: int = Field(ge=0)
    row_reasons: dict[str, int]
    truth: TruthAnswer | None


def _table_to_wire(table: pa.Table | None) -> bytes:
    if table is None:
        return b""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _evidence_from_wire(data: bytes) -> pa.Table | None:
    """The evidence the child sent, checked: the declared schema and valid arrays, else ValueError."""
    if not data:
        return None
    table = pa.ipc.open_stream(pa.BufferReader(data)).read_all()
    if not table.schema.equals(EVIDENCE_SCHEMA):
        raise ValueError("evidence of another schema")
    table.validate(full=True)
    return table


def to_wire(prepared: Prepared) -> tuple[bytes, bytes, bytes]:
    """(the answer as JSON, fingerprint bytes, evidence as Arrow IPC) of a prepared judging."""
    truth = None if prepared.truth is None else TruthAnswer.model_validate(prepared.truth, from_attributes=True)
    answer = Answer(
        gate=prepared.gate,
        gate_detail=prepared.gate_detail[:500],
        sha256=prepared.sha256,
        rows_uploaded=prepared.rows_uploaded,
        row_reasons=prepared.row_reasons,
        truth=truth,
    )
    return (
        answer.model_dump_json().encode(),
        np.ascontiguousarray(prepared.prints, np.uint64).tobytes(),
        _table_to_wire(prepared.evidence),
    )


def from_wire(sub: Submission, body: bytes, prints: bytes, evidence: bytes = b"") -> Prepared:
    """The child's answer about ``sub`` (identity and upload time are the parent's, never the child's)."""
    answer = Answer.model_validate_json(body)
    return Prepared(
        sub.hotkey,
        sub.uid,
        answer.gate,
        answer.gate_detail,
        answer.sha256,
        sub.listings_modified,
        answer.rows_uploaded,
        Counter(answer.row_reasons),
        answer.truth.result() if answer.truth else None,
        np.frombuffer(prints, np.uint64).copy(),
        _evidence_from_wire(evidence),
    )


async def _send(writer: asyncio.StreamWriter | None, payload: bytes) -> None:
    if writer is None:
        raise BrokenPipeError("the judging child has no input pipe")
    writer.write(_FRAME.pack(len(payload)) + payload)
    await writer.drain()


async def _receive(reader: asyncio.StreamReader | None) -> bytes:
    if reader is None:
        raise ConnectionError("the judging child has no output pipe")
    (size,) = _FRAME.unpack(await reader.readexactly(_FRAME.size))
    if size > MAX_ANSWER_BYTES:
        raise ValueError(f"answer of {size} bytes")
    return await reader.readexactly(size)


# --- the parent's side ----------------------------------------------------------------------------------------


def epoch_message(inputs: EpochInputs) -> bytes:
    """The epoch's inputs as a child takes them (the snapshot indexed once, here)."""
    index = index_of(inputs.snapshot, inputs.ctx)
    return pickle.dumps(("epoch", inputs.ctx, inputs.params, index, inputs.block_hash), protocol=pickle.HIGHEST_PROTOCOL)


class Sandbox:
    """Judges submissions in a child process; :meth:`prepare` never raises for anything about the file."""

    def __init__(self, limits: SandboxLimits = SandboxLimits()):
        self.limits = limits
        self._epoch: bytes | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self.started = 0
        """Children started so far (a new one after every crash or timeout)."""

    def set_epoch(self, inputs: EpochInputs) -> None:
        """What every judging of the epoch needs; a running child gets it before its next miner."""
        self.set_epoch_message(epoch_message(inputs))

    def set_epoch_message(self, message: bytes) -> None:
        self._epoch = message
        self._sent_epoch = False

    async def _child(self) -> asyncio.subprocess.Process:
        if self._proc is None or self._proc.returncode is not None:
            env = dict(
                os.environ,
                ARROW_DEFAULT_MEMORY_POOL="system",
                MALLOC_ARENA_MAX="2",
                RESI_SANDBOX_MEMORY_MB=str(self.limits.memory_mb),
            )
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "resi.validator.sandbox",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=env,
                preexec_fn=_die_with_parent,
            )
            self.started += 1
            self._sent_epoch = False
        if self._epoch is None:
            raise RuntimeError("set_epoch first")
        if not self._sent_epoch:
            await _send(self._proc.stdin, self._epoch)
            self._sent_epoch = True
        return self._proc

    async def prepare(self, sub: Submission) -> Prepared:
        """``prepare`` of ``sub`` in the child, or a gate reason if the child could not finish it."""
        if self._epoch is None:
            raise RuntimeError("set_epoch first")
        request = pickle.dumps(("prepare", sub), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            proc = await self._child()
            try:
                await _send(proc.stdin, request)
            except (BrokenPipeError, ConnectionResetError):  # gone before this miner's turn: not its doing
                await self._kill()
                proc = await self._child()
                await _send(proc.stdin, request)
            answer = await asyncio.wait_for(self._answer(proc), timeout=self.limits.seconds)
            return from_wire(sub, *answer)
        except asyncio.TimeoutError:
            await self._kill()
            logger.warning(f"uid {sub.uid}: judging its files took over {self.limits.seconds:g} s; child stopped")
            return Prepared(sub.hotkey, sub.uid, "judging_timeout", f"over {self.limits.seconds:g} s")
        except (
            asyncio.IncompleteReadError,
            ConnectionError,
            BrokenPipeError,
            ValueError,
            KeyError,
            TypeError,
            pa.ArrowException,
        ) as exc:
            code = await self._kill()
            logger.warning(f"uid {sub.uid}: the judging child died (exit {code}, {type(exc).__name__})")
            return Prepared(sub.hotkey, sub.uid, "judging_crashed", f"the judging process ended (exit code {code})")

    @staticmethod
    async def _answer(proc: asyncio.subprocess.Process) -> tuple[bytes, bytes, bytes]:
        return await _receive(proc.stdout), await _receive(proc.stdout), await _receive(proc.stdout)

    async def _kill(self) -> int | None:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.returncode is None:
            try:
                proc.kill()
            except ProcessLookupError:
                pass
        try:
            return await asyncio.wait_for(proc.wait(), timeout=10)
        except asyncio.TimeoutError:
            return None

    async def close(self) -> None:
        await self._kill()


class SandboxPool:
    """``limits.workers`` sandboxes judging side by side: :meth:`prepare` takes whichever is free."""

    def __init__(self, limits: SandboxLimits = SandboxLimits()):
        self.limits = limits
        self.sandboxes = [Sandbox(limits) for _ in range(max(1, limits.workers))]
        self._free: asyncio.Queue | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def started(self) -> int:
        return sum(s.started for s in self.sandboxes)

    def set_epoch(self, inputs: EpochInputs) -> None:
        message = epoch_message(inputs)
        for sandbox in self.sandboxes:
            sandbox.set_epoch_message(message)

    async def prepare(self, sub: Submission) -> Prepared:
        loop = asyncio.get_running_loop()
        if self._free is None or self._loop is not loop:
            self._free, self._loop = asyncio.Queue(), loop
            for sandbox in self.sandboxes:
                self._free.put_nowait(sandbox)
        sandbox = await self._free.get()
        try:
            return await sandbox.prepare(sub)
        finally:
            self._free.put_nowait(sandbox)

    async def close(self) -> None:
        for sandbox in self.sandboxes:
            await sandbox.close()


def _die_with_parent() -> None:
    from resi.processes import die_with_parent

    die_with_parent()


# --- the child's side -----------------------------------------------------------------------------------------


def _limit_memory(budget_mb: int) -> None:
    """Cap this process's address space at its current size plus ``budget_mb`` (Linux)."""
    import resource

    try:
        with open("/proc/self/status") as status:
            size_kb = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError):
        return
    limit = size_kb * 1024 + budget_mb * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _read_frame(stream) -> bytes | None:
    head = stream.read(_FRAME.size)
    if len(head) < _FRAME.size:
        return None
    (size,) = _FRAME.unpack(head)
    return stream.read(size)


def _write_frame(stream, payload: bytes) -> None:
    stream.write(_FRAME.pack(len(payload)) + payload)


def main(argv: list[str] | None = None) -> int:
    """The child: read the epoch, then judge submissions one by one until stdin closes."""
    argparse.ArgumentParser(
        prog="python -m resi.validator.sandbox",
        description=(
            "The validator's judging child: reads the epoch and then one miner's files at a time as framed messages "
            "on stdin, answers each verdict on stdout, under the memory limit in $RESI_SANDBOX_MEMORY_MB. The "
            "validator starts it (--validator.judge_workers of them); it is not run by hand."
        ),
    ).parse_args(argv)
    import pyarrow  # noqa: F401 - loaded before the limit is measured: it belongs to the footprint

    _limit_memory(int(os.environ.get("RESI_SANDBOX_MEMORY_MB", "1024")))
    inp = sys.stdin.buffer
    out = os.fdopen(os.dup(1), "wb")  # the answers' own channel; anything else printed goes to stderr
    os.dup2(2, 1)
    epoch: tuple[Any, ...] | None = None
    while (frame := _read_frame(inp)) is not None:
        message = pickle.loads(frame)  # from the parent: trusted
        if message[0] == "epoch":
            epoch = message[1:]
            continue
        if epoch is None:
            raise RuntimeError("a miner to judge before the epoch's inputs")
        ctx, params, index, block_hash = epoch
        prepared = prepare(message[1], ctx, params, index, block_hash)
        for frame in to_wire(prepared):
            _write_frame(out, frame)
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
