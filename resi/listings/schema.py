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
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from resi.arrays import contiguous

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


LISTING_PAGES = "/realestateandhomes-detail/"
"""Where the source's listing pages live under its origin: a row's ``source_url`` is one of them."""


def canonical_source_url(url: str) -> str:
    """The one spelling of a listing page's address that rows carry and validators compare: without query
    string, fragment or trailing slash (``https://www.realtor.com/realestateandhomes-detail/1-Main-St_City_ST_08540_M123``).
    The source's own link to a listing, written this way, is the row's ``source_url``."""
    return url.split("#", 1)[0].split("?", 1)[0].rstrip("/")


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
    "street": "st",
    "avenue": "ave",
    "av": "ave",
    "road": "rd",
    "drive": "dr",
    "boulevard": "blvd",
    "lane": "ln",
    "court": "ct",
    "place": "pl",
    "terrace": "ter",
    "circle": "cir",
    "highway": "hwy",
    "parkway": "pkwy",
    "square": "sq",
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
    "northeast": "ne",
    "northwest": "nw",
    "southeast": "se",
    "southwest": "sw",
    "apartment": "unit",
    "apt": "unit",
    "suite": "unit",
    "ste": "unit",
    "#": "unit",
    "no": "unit",
}


_FOLD = str.maketrans({c: " " for c in ".,;:'\"()/\\-_"} | {"#": " # "})


def address_key(address: str, zipcode: str) -> str:
    """A spelling-insensitive key of an address: case, punctuation, street-type and unit spellings folded.

    Only the street line (before the first comma) counts: ``"123 North Main Street Apt. 4B, Philadelphia"``
    and ``"123 n main st #4b"`` give the same key.
    """
    street = address.split(",", 1)[0].lower().translate(_FOLD)
    return zipcode + "|" + " ".join([_ABBREVIATIONS.get(tok, tok) for tok in street.split()])


_PRINTABLE_ASCII = r"^[\x20-\x7e]*$"
_FOLDED = r"[.,;:'\"()/\\\-_]"


def address_keys(addresses: pa.Array, zipcodes: pa.Array) -> pa.Array:
    """:func:`address_key` of every row at once. Printable-ASCII addresses go through compute kernels (where
    they and Python's ``lower``/``split`` provably agree); any other address goes through ``address_key``."""
    addresses, zipcodes = contiguous(addresses), contiguous(zipcodes)
    street = pc.list_element(pc.split_pattern(addresses, ",", max_splits=1), 0)
    street = pc.replace_substring(pc.replace_substring_regex(pc.ascii_lower(street), _FOLDED, " "), "#", " # ")
    tokens = pc.ascii_split_whitespace(pc.ascii_trim_whitespace(street))
    flat = pc.list_flatten(tokens)
    known = pc.index_in(flat, value_set=_ABBREVIATION_KEYS)
    mapped = pc.if_else(pc.is_null(known), flat, pc.take(_ABBREVIATION_VALUES, known))
    joined = pc.binary_join(pa.ListArray.from_arrays(tokens.offsets, mapped), " ")
    keys = pc.binary_join_element_wise(zipcodes, joined, "|")
    simple = pc.fill_null(pc.match_substring_regex(addresses, _PRINTABLE_ASCII), True)
    if pc.all(simple).as_py() is not False:
        return keys
    others = pc.indices_nonzero(pc.invert(simple)).to_pylist()
    values = keys.to_pylist()
    for i in others:
        values[i] = address_key(addresses[i].as_py(), zipcodes[i].as_py()) if zipcodes[i].is_valid else None
    return pa.array(values, pa.string())


def address_groups(addresses: pa.Array, zipcodes: pa.Array) -> pa.Array:
    """A coarse key that rows with equal :func:`address_key` share (their zipcode and the street line's first
    run of digits, which folding never changes); cheap enough to find the few rows whose keys are worth
    computing."""
    street = pc.list_element(pc.split_pattern(addresses, ",", max_splits=1), 0)
    digits = pc.struct_field(pc.extract_regex(street, r"^[^0-9]*(?P<d>[0-9]*)"), "d")
    return pc.binary_join_element_wise(zipcodes, digits, "|")


_ABBREVIATION_KEYS = pa.array(list(_ABBREVIATIONS), pa.string())
_ABBREVIATION_VALUES = pa.array(list(_ABBREVIATIONS.values()), pa.string())
