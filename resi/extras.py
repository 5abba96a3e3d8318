"""The optional parts of the install: a lean ``pip install .`` runs miners and validators; the local twins (the
reference API server, SeaweedFS, the listing site, the local network) come with ``pip install '.[localnet]'``."""

from __future__ import annotations

import importlib.util


def require_localnet(what: str) -> None:
    """Stop with the one-line fix when ``what`` is used without the local network's extras installed."""
    missing = [name for name in ("boto3", "zipcodes") if importlib.util.find_spec(name) is None]
    if missing:
        raise SystemExit(
            f"{what} needs the local network's extras ({', '.join(missing)} missing): "
            "pip install '.[localnet]' (or python3 scripts/dev.py localnet)"
        )
