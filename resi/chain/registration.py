"""Whether a hotkey may take part on a subnet, and the one line that says what to do when it may not."""

from __future__ import annotations

from resi.chain.base import Metagraph


def registration_problem(graph: Metagraph, hotkey: str, *, validator: bool, hint: str = "") -> str | None:
    """One line saying what to do when ``hotkey`` cannot take part on ``graph``'s subnet (not registered; for
    a validator, no validator permit); None when it can. ``hint``: the wallet flags to put in the command."""
    me = graph.by_hotkey(hotkey)
    flags = f" {hint}" if hint else ""
    if me is None:
        return (
            f"hotkey {hotkey} is not registered on netuid {graph.netuid}: register it with "
            f"`btcli subnets register --netuid {graph.netuid}{flags}`, then start again"
        )
    if validator and not me.validator_permit:
        return (
            f"hotkey {hotkey} (uid {me.uid}) has no validator permit on netuid {graph.netuid}: permits go to "
            f"the largest stakes at each tempo; add stake with `btcli stake add --netuid {graph.netuid}{flags}`, "
            "then start again"
        )
    return None
