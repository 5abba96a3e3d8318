"""JSON from outside, decoded without letting its shape hurt the decoder.

CPython's ``json`` recurses once per nesting level: 60 KB of ``[`` raises ``RecursionError`` (not a
``ValueError``) and a large depth costs the C stack. :func:`loads` measures the nesting of the raw bytes
first (brackets outside string literals, counted with numpy: linear and allocation-bounded) and refuses
anything deeper than ``max_depth`` before ``json`` sees it.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

MAX_DEPTH = 32
_STEP = np.zeros(256, np.int8)
_STEP[[ord("["), ord("{")]] = 1
_STEP[[ord("]"), ord("}")]] = -1


class JsonRejected(ValueError):
    """Not acceptable JSON; the message says why (too deep, not UTF-8, not JSON)."""


def depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects in ``data`` (brackets inside strings do not count). Linear:
    a quote preceded by an even run of backslashes opens or closes a string, counted with cumulative sums."""
    chars = np.frombuffer(data, np.uint8)
    if chars.size == 0:
        return 0
    position = np.arange(chars.size)
    last_plain = np.maximum.accumulate(np.where(chars == ord("\\"), -1, position))
    backslashes_before = np.zeros(chars.size, np.int64)
    backslashes_before[1:] = position[:-1] - last_plain[:-1]
    quotes = (chars == ord('"')) & (backslashes_before % 2 == 0)
    inside = np.cumsum(quotes) % 2 == 1
    steps = np.where(inside, 0, _STEP[chars])
    return int(np.cumsum(steps, dtype=np.int64).max(initial=0))


def loads(data: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` for hostile input: :class:`JsonRejected` for anything deeper than ``max_depth``, not
    UTF-8, or not JSON; never ``RecursionError``."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if depth(raw) > max_depth:
        raise JsonRejected(f"nested deeper than {max_depth} levels")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise JsonRejected("not UTF-8") from None
    except (ValueError, RecursionError) as exc:
        raise JsonRejected(f"not JSON: {str(exc)[:120]}") from None
