"""Keeping the validator's weights on chain, beside the epoch loop (as opentensor's subnet template and
data-universe's validator do):

- the metagraph and the subnet's hyperparameters are read again every ``resync_blocks`` blocks and right
  before weights are set; each resync checks this hotkey is still registered and holds a validator permit,
  and warns when the chain's ``WeightsVersionKey`` is above this release's;
- weights are set from the current EMA (:func:`resi.validation.scoring.chain_weights`: never to an
  unregistered uid, nothing from the EMA of a hotkey that no longer holds its uid, padded to
  ``MinAllowedWeights``) whenever an epoch changed the EMA or a resync showed that a uid weighted last time
  changed hands (the new hotkey must stop receiving the old one's EMA) and the rate limit allows, and in any case every
  ``WeightsSetRateLimit + margin_blocks`` blocks, epochs skipped or not, so that the validator never
  crosses the chain's activity cutoff;
- a submission waits for inclusion only (never finalization); that it landed is confirmed on a later
  resync from this uid's ``LastUpdate``, and a submission that never shows up is simply made again when due.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from loguru import logger

from resi.chain.base import Chain, ChainError, Metagraph, SubnetParams, WeightsRefused
from resi.chain.registration import registration_problem
from resi.clock import Clock, SystemClock, pause
from resi.monitor.metrics import ValidatorMetrics
from resi.validation.scoring import chain_weights
from resi.validator.state import ValidatorState


@dataclass(frozen=True)
class WeightSchedule:
    resync_blocks: int = 25
    """Blocks between two reads of the metagraph (about 5 minutes on finney)."""
    margin_blocks: int = 5
    """Blocks beyond ``WeightsSetRateLimit`` after which the weights are set again anyway."""
    poll_seconds: float = 12.0
    """Seconds between two looks at the chain head (one block on finney)."""
    retry_blocks: int = 3
    """Blocks to wait after a submission failed for a reason other than the chain's rules."""


class WeightKeeper:
    def __init__(
        self,
        chain: Chain,
        state: ValidatorState,
        hotkey: str,
        version_key: int,
        schedule: WeightSchedule = WeightSchedule(),
        wallet_hint: str = "",
        metrics: ValidatorMetrics | None = None,
        clock: Clock | None = None,
    ):
        self.chain = chain
        self.clock = clock or SystemClock()
        self.metrics = metrics or ValidatorMetrics()
        self.state = state
        self.hotkey = hotkey
        self.version_key = version_key
        self.schedule = schedule
        self.wallet_hint = wallet_hint
        self.graph: Metagraph | None = None
        self.params: SubnetParams | None = None
        self._synced_at = -1
        self._pending: int | None = None
        """Block of the last submission while the chain's ``LastUpdate`` for this uid does not show it yet."""
        self._sent_epoch: str | None = None
        """The epoch whose EMA was last set (None after a restart: set again as soon as allowed)."""
        self._sent_holders: dict[int, str] = {}
        """uid -> hotkey of the weights last submitted."""
        self._not_before = 0
        self._said: dict[str, str] = {}
        self._lock = asyncio.Lock()

    def _once(self, topic: str, level: str, line: str) -> None:
        """Log ``line`` unless it is what was last said about ``topic``."""
        if self._said.get(topic) != line:
            self._said[topic] = line
            logger.log(level, line)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.attempt()
            await pause(stop, self.schedule.poll_seconds)

    async def attempt(self) -> None:
        """:meth:`tick`, whatever happens (said in one line)."""
        try:
            await self.tick()
        except ChainError as exc:
            self._once("chain", "WARNING", f"weights: the chain did not answer ({exc}); trying again")
        except Exception:
            logger.exception("weights: unexpected error; continuing")

    async def resync(self) -> tuple[Metagraph, SubnetParams]:
        graph, params = await self.chain.metagraph(), await self.chain.params()
        self.graph, self.params, self._synced_at = graph, params, graph.block
        self._said.pop("chain", None)
        problem = registration_problem(graph, self.hotkey, validator=True, hint=self.wallet_hint)
        me = graph.by_hotkey(self.hotkey)
        if problem or me is None:
            self._once("registration", "ERROR", problem or f"hotkey {self.hotkey} is not registered")
        else:
            self._once(
                "registration",
                "INFO",
                f"hotkey {self.hotkey} holds uid {me.uid} with a validator permit on netuid {graph.netuid}",
            )
        if params.weights_version_key > self.version_key:
            self._once(
                "version",
                "WARNING",
                f"netuid {graph.netuid} requires weights version key "
                f"{params.weights_version_key}, this release sends {self.version_key}: the chain refuses "
                "these weights; update the validator (git pull && pip install -e .) and restart it",
            )
        if self._pending is not None and me is not None and me.last_update >= self._pending:
            logger.info(f"weights: included at block {me.last_update}")
            self._pending = None
        return graph, params

    def _due(self, block: int) -> bool:
        if self.graph is None or self.params is None:
            return False
        me = self.graph.by_hotkey(self.hotkey)
        if me is None or not me.validator_permit or block < self._not_before:
            return False
        if me.last_update == 0 and self._pending is None:
            return True
        since = block - max(me.last_update, self._pending or 0)  # the last submission, seen on chain or not
        limit = self.params.weights_rate_limit
        if since >= limit + self.schedule.margin_blocks:
            return True  # the cadence: whatever happened to the epochs
        return since >= limit and (self.state.ema_epoch() != self._sent_epoch or self._holders_changed())

    def _holders_changed(self) -> bool:
        holders = {n.uid: n.hotkey for n in self.graph.neurons} if self.graph else {}
        return any(holders.get(uid) != hotkey for uid, hotkey in self._sent_holders.items())

    async def tick(self) -> None:
        """One look at the chain: resync when due, set the weights when due."""
        async with self._lock:
            await self._tick()

    async def _tick(self) -> None:
        block = await self.chain.block()
        if self.graph is None or block - self._synced_at >= self.schedule.resync_blocks:
            await self.resync()
        if not self._due(block):
            return
        ema = self.state.ema()
        if not any(value > 0 for _, value in ema.values()):
            self._once("empty", "INFO", "weights: no uid has earned anything yet; nothing to set")
            return
        self._said.pop("empty", None)
        graph, params = await self.resync()  # right before setting: the hotkeys and the rules of this moment
        if not self._due(block):
            return
        epoch = self.state.ema_epoch()
        holders = {n.uid: n.hotkey for n in graph.neurons}
        uids, weights = chain_weights(ema, holders, params.min_allowed_weights)
        if not uids:
            self._once("empty", "INFO", "weights: no uid that earned something holds its uid any more; nothing to set")
            self._not_before = block + self.schedule.retry_blocks
            return
        try:
            result = await self.chain.set_weights(uids, weights, self.version_key)
        except WeightsRefused as exc:
            self.metrics.weights_failures.labels("refused").inc()
            self._not_before = block + self.schedule.retry_blocks
            self._once("refused", "WARNING", f"weights: the chain refused them: {exc}")
            return
        except ChainError as exc:
            self.metrics.weights_failures.labels("error").inc()
            self._not_before = block + self.schedule.retry_blocks
            logger.warning(f"weights: submission failed ({exc}); trying again in {self.schedule.retry_blocks} blocks")
            return
        self._said.pop("refused", None)
        self.metrics.weights_set.inc()
        self._pending = result.block or block
        self._sent_epoch = epoch
        self._sent_holders = {uid: holders[uid] for uid in uids}
        if epoch is not None:
            self.state.mark(epoch, weights_set=True, sent=(self._pending, uids, weights), at=self.clock.now().timestamp())
        logger.info(f"weights: submitted for {len(uids)} uids at block {self._pending} (EMA of epoch {epoch})")
