"""The listing schema, declared once: the spec's REQUIRED_FIELDS plus what a source gives that makes
checking possible. A pyarrow schema for files, a pydantic row model for code, and the address key that
deduplication uses. The plausibility rules are in ``checks.py``.

Nullable fields and why:
- bedrooms, bathrooms: land and some lots have none.
- sqft: often missing from the source (land, new construction, older records).
- listing_date, days_on_market: some listings carry no list date; without it there is no age.
- mls_id: "if available" (spec); not every listing comes through an MLS.
- latitude, longitude: a few addresses are not geocoded.
Everything else is required: a row without it is dropped with a reason, never guessed.
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

PROPERTY_TYPES = ("house", "condo", "townhouse", "multi_family", "land", "mobile", "farm", "other")
LISTING_STATUSES = ("active", "pending", "sold")

# (name, arrow type, nullable)
_COLUMNS: tuple[tuple[str, pa.DataType, bool], ...] = (
    ("address", pa.string(), False),
    ("zipcode", pa.string(), False),
    ("price", pa.float64(), False),
    ("bedrooms", pa.int64(), True),
    ("bathrooms", pa.float64(), True),
    ("sqft", pa.int64(), True),
    ("listing_date", pa.string(), True),
    ("property_type", pa.string(), False),
    ("listing_status", pa.string(), False),
    ("days_on_market", pa.int64(), True),
    ("mls_id", pa.string(), True),
    ("source_url", pa.string(), False),
    ("scraped_timestamp", pa.string(), False),
    # Beyond REQUIRED_FIELDS: what makes a row checkable against its source.
    ("listing_id", pa.string(), False),
    ("city", pa.string(), False),
    ("state", pa.string(), False),
    ("latitude", pa.float64(), True),
    ("longitude", pa.float64(), True),
)

LISTING_SCHEMA = pa.schema([pa.field(name, typ, nullable=nullable) for name, typ, nullable in _COLUMNS])
READ_SCHEMA = pa.schema([f.with_nullable(True) for f in LISTING_SCHEMA])
"""The same columns, all nullable: what untrusted files are read into (a null in a required column is a row
problem the checks report, not a crash)."""
COLUMNS = tuple(name for name, _, _ in _COLUMNS)
REQUIRED_FIELDS = COLUMNS[:13]
"""The spec's REQUIRED_FIELDS, in its order."""


class ListingRow(BaseModel):
    """One listing as code sees it; ``model_dump()`` gives a row of :data:`LISTING_SCHEMA`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str = Field(min_length=1)
    zipcode: str = Field(pattern=r"^\d{5}$")
    price: float
    bedrooms: int | None = None
    bathrooms: float | None = None
    sqft: int | None = None
    listing_date: str | None = None
    property_type: Literal["house", "condo", "townhouse", "multi_family", "land", "mobile", "farm", "other"]
    listing_status: Literal["active", "pending", "sold"]
    days_on_market: int | None = None
    mls_id: str | None = None
    source_url: str = Field(min_length=1)
    scraped_timestamp: str
    listing_id: str = Field(min_length=1)
    city: str
    state: str
    latitude: float | None = None
    longitude: float | None = None


_ABBREVIATIONS = {
    "street": "st", "avenue": "ave", "av": "ave", "road": "rd", "drive": "dr", "boulevard": "blvd",
    "lane": "ln", "court": "ct", "place": "pl", "terrace": "ter", "circle": "cir", "highway": "hwy",
    "parkway": "pkwy", "square": "sq", "north": "n", "south": "s", "east": "e", "west": "w",
    "northeast": "ne", "northwest": "nw", "southeast": "se", "southwest": "sw",
    "apartment": "unit", "apt": "unit", "suite": "unit", "ste": "unit", "#": "unit", "no": "unit",
}


_FOLD = str.maketrans({c: " " for c in ".,;:'\"()/\\-_"} | {"#": " # "})


def address_key(address: str, zipcode: str) -> str:
    """A spelling-insensitive key of an address: case, punctuation, street-type and unit spellings folded.

    Only the street line (before the first comma) counts: ``"123 North Main Street Apt. 4B, Philadelphia"``
    and ``"123 n main st #4b"`` give the same key.
    """
    street = address.split(",", 1)[0].lower().translate(_FOLD)
    return zipcode + "|" + " ".join([_ABBREVIATIONS.get(tok, tok) for tok in street.split()])
