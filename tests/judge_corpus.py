"""Judge a folder of submissions the way a validator does, and report the outcome and the memory it took.

    python -m tests.judge_corpus DIR [--memory-mb 1024] [--seconds 120]

DIR holds ``<case>.listings``, ``<case>.metadata`` and ``<case>.name``. Each case goes through the real path
(``Sandbox.prepare`` in a child process, then ``finish``); one JSON line per case on stdout, then a line with
the peak resident memory of this process and of its children (the sandbox), in MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
from pathlib import Path

from resi.listings.upload import Submission
from resi.processes import peak_rss_mb
from resi.validation.evaluate import EpochInputs, finish
from resi.validator.sandbox import Sandbox, SandboxLimits
from tests.hostile import MODIFIED
from tests.validation.epoch_data import CTX, SNAP, P


def load(folder: Path) -> list[tuple[str, Submission]]:
    cases = []
    for name_file in sorted(folder.glob("*.name")):
        stem = name_file.with_suffix("")
        cases.append(
            (
                name_file.read_text(),
                Submission(
                    "hk1",
                    1,
                    stem.with_suffix(".listings").read_bytes(),
                    stem.with_suffix(".metadata").read_bytes(),
                    MODIFIED,
                    MODIFIED,
                ),
            )
        )
    return cases


async def judge(cases: list[tuple[str, Submission]], limits: SandboxLimits) -> None:
    sandbox = Sandbox(limits)
    sandbox.set_epoch(EpochInputs(CTX, P, SNAP, "0x1"))
    try:
        for name, sub in cases:
            prepared = await sandbox.prepare(sub)
            result = finish(prepared, {}, CTX, SNAP.counts, P)
            print(
                json.dumps(
                    {
                        "name": name,
                        "score": result.score,
                        "gate": result.gate,
                        "reasons": result.reasons,
                        "children": sandbox.started,
                    }
                ),
                flush=True,
            )
    finally:
        await sandbox.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("--memory-mb", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=120.0)
    args = parser.parse_args()
    asyncio.run(judge(load(args.folder), SandboxLimits(args.memory_mb, args.seconds)))
    own = peak_rss_mb()
    # the judging children's peak; it counts this process's resident size at each fork too: an overestimate
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mb": own, "children_peak_rss_mb": children}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
