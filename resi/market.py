"""The offline zipcode catalog and the market model shared by the reference API server and the local site.

The server assigns each zipcode an expected listing count; the local listing site serves about that many
listings there. Both derive the numbers from this one deterministic model (zipcode in, tier, region and
count out), so they agree without talking to each other. ``scale`` shrinks every count for local
networks and tests (0.05 turns the production range 200..3,000 into 10..150).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

from resi.constants import MAX_ZIPCODE_LISTINGS, MIN_ZIPCODE_LISTINGS

TIERS = ("PREMIUM", "STANDARD", "EMERGING")

# US Census regions by state (plus DC and PR for completeness of the catalog).
_REGIONS = {
    "Northeast": "CT ME MA NH RI VT NJ NY PA",
    "Midwest": "IL IN MI OH WI IA KS MN MO NE ND SD",
    "South": "DE DC FL GA MD NC SC VA WV AL KY MS TN AR LA OK TX PR",
    "West": "AZ CO ID MT NV NM UT WY AK CA HI OR WA",
}
REGION_OF_STATE = {state: region for region, states in _REGIONS.items() for state in states.split()}

# Listing supply by tier, as a share of the production range: premium markets are thin and expensive,
# emerging ones deep and cheaper.
_TIER_SPAN = {"PREMIUM": (0.0, 0.35), "STANDARD": (0.15, 0.7), "EMERGING": (0.4, 1.0)}
_TIER_PRICE = {"PREMIUM": 1_150_000, "STANDARD": 420_000, "EMERGING": 240_000}


@dataclass(frozen=True)
class ZipcodeInfo:
    zipcode: str
    city: str
    state: str
    county: str | None
    latitude: float
    longitude: float
    tier: str
    region: str


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from ``parts``."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@lru_cache(maxsize=1)
def catalog() -> dict[str, ZipcodeInfo]:
    """Every active standard US zipcode of the offline ``zipcodes`` package with coordinates and a region."""
    import zipcodes

    out: dict[str, ZipcodeInfo] = {}
    for row in zipcodes.list_all():
        state = row.get("state")
        if row.get("zip_code_type") != "STANDARD" or not row.get("active") or state not in REGION_OF_STATE:
            continue
        try:
            lat, lon = float(row["lat"]), float(row["long"])
        except (TypeError, ValueError, KeyError):
            continue
        code = row["zip_code"]
        u = _unit("tier", code)
        tier = "PREMIUM" if u < 0.25 else "STANDARD" if u < 0.7 else "EMERGING"
        out[code] = ZipcodeInfo(code, row.get("city") or "", state, row.get("county"), lat, lon, tier, REGION_OF_STATE[state])
    return out


def zipcode_info(zipcode: str) -> ZipcodeInfo | None:
    return catalog().get(zipcode)


def known_zipcode(zipcode: str) -> ZipcodeInfo:
    """The zipcode's data; ValueError for a zipcode the catalog does not hold."""
    info = zipcode_info(zipcode)
    if info is None:
        raise ValueError(f"{zipcode!r} is not a US zipcode the catalog knows")
    return info


def expected_listings(zipcode: str, scale: float = 1.0) -> int:
    """The expected number of current listings in ``zipcode`` (production range 200..3,000, times ``scale``)."""
    info = zipcode_info(zipcode)
    tier = info.tier if info else "STANDARD"
    low, high = _TIER_SPAN[tier]
    share = low + (high - low) * _unit("supply", zipcode)
    base = MIN_ZIPCODE_LISTINGS + share * (MAX_ZIPCODE_LISTINGS - MIN_ZIPCODE_LISTINGS)
    return max(1, round(base * scale))


def median_price(zipcode: str) -> float:
    """A zipcode's median list price in USD: its tier's level, spread by ±40% per zipcode."""
    info = zipcode_info(zipcode)
    tier = info.tier if info else "STANDARD"
    return _TIER_PRICE[tier] * (0.6 + 0.8 * _unit("price", zipcode))


def count_range(scale: float) -> tuple[int, int]:
    """The smallest and largest expected count the model gives at ``scale``."""
    return max(1, round(MIN_ZIPCODE_LISTINGS * scale)), max(1, round(MAX_ZIPCODE_LISTINGS * scale))
