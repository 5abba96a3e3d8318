"""A corpus of hostile miner files, one or more per class a validator must survive, each wrapped in a
submission whose metadata is right about it (so that the hostile part is what gets judged).

Footers that lie are made by rewriting a real file's footer: :func:`rewrite_footer` walks the Thrift compact
protocol of parquet's ``FileMetaData`` and replaces chosen integer fields (the decoded sizes, the row counts).
"""

from __future__ import annotations

import io
import json
import struct
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq

from resi.constants import SCHEMA_VERSION
from resi.epochs import iso_z
from resi.listings.files import EpochMetadata, ScraperInfo, sha256_hex, table_from_rows
from resi.listings.schema import LISTING_SCHEMA
from resi.listings.upload import Submission
from tests.validation.epoch_data import CTX, START, honest_rows, row

# --- Thrift compact protocol (enough of it to rewrite a parquet footer) ----------------------------------------

STOP, TRUE, FALSE, BYTE, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT = range(13)


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7


def _put_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        if value < 0x80:
            out.append(value)
            return bytes(out)
        out.append((value & 0x7F) | 0x80)
        value >>= 7


def _unzig(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def _zig(n: int) -> int:
    return (n << 1) ^ (n >> 63)


def _read(data: bytes, i: int, kind: int):
    if kind in (TRUE, FALSE):
        return kind == TRUE, i
    if kind == BYTE:
        return data[i], i + 1
    if kind in (I16, I32, I64):
        value, i = _varint(data, i)
        return _unzig(value), i
    if kind == DOUBLE:
        return data[i : i + 8], i + 8
    if kind == BINARY:
        size, i = _varint(data, i)
        return data[i : i + size], i + size
    if kind in (LIST, SET):
        head = data[i]
        i += 1
        size, elem = head >> 4, head & 0x0F
        if size == 15:
            size, i = _varint(data, i)
        items = []
        for _ in range(size):
            if elem in (TRUE, FALSE):
                items.append(data[i] == 1)
                i += 1
            else:
                item, i = _read(data, i, elem)
                items.append(item)
        return ("list", elem, items), i
    if kind == MAP:
        size, i = _varint(data, i)
        if size == 0:
            return ("map", 0, 0, []), i
        types = data[i]
        i += 1
        pairs = []
        for _ in range(size):
            key, i = _read(data, i, types >> 4)
            value, i = _read(data, i, types & 0x0F)
            pairs.append((key, value))
        return ("map", types >> 4, types & 0x0F, pairs), i
    if kind == STRUCT:
        fields, last = [], 0
        while True:
            head = data[i]
            i += 1
            if head == STOP:
                return ("struct", fields), i
            delta, ftype = head >> 4, head & 0x0F
            if delta:
                fid = last + delta
            else:
                raw, i = _varint(data, i)
                fid = _unzig(raw)
            value, i = _read(data, i, ftype)
            fields.append([fid, ftype, value])
            last = fid
    raise ValueError(f"thrift type {kind}")


def _write(kind: int, value) -> bytes:
    if kind in (TRUE, FALSE):
        return b""
    if kind == BYTE:
        return bytes([value])
    if kind in (I16, I32, I64):
        return _put_varint(_zig(value))
    if kind == DOUBLE:
        return value
    if kind == BINARY:
        return _put_varint(len(value)) + value
    if kind in (LIST, SET):
        _, elem, items = value
        head = bytes([(len(items) << 4) | elem]) if len(items) < 15 else bytes([0xF0 | elem]) + _put_varint(len(items))
        body = b"".join(bytes([1 if x else 2]) if elem in (TRUE, FALSE) else _write(elem, x) for x in items)
        return head + body
    if kind == MAP:
        _, ktype, vtype, pairs = value
        if not pairs:
            return b"\x00"
        return (
            _put_varint(len(pairs))
            + bytes([(ktype << 4) | vtype])
            + b"".join(_write(ktype, k) + _write(vtype, v) for k, v in pairs)
        )
    if kind == STRUCT:
        out, last = bytearray(), 0
        for fid, ftype, fvalue in value[1]:
            if ftype in (TRUE, FALSE):
                ftype = TRUE if fvalue else FALSE
            if 0 < fid - last <= 15:
                out.append(((fid - last) << 4) | ftype)
            else:
                out.append(ftype)
                out += _put_varint(_zig(fid))
            out += _write(ftype, fvalue)
            last = fid
        out.append(STOP)
        return bytes(out)
    raise ValueError(f"thrift type {kind}")


def rewrite_footer(data: bytes, edit: Callable[[tuple[int, ...], int], int | None]) -> bytes:
    """``data`` with every integer field of its footer for which ``edit(path, value)`` gives a new value replaced
    (``path``: the field ids from ``FileMetaData`` down, list positions skipped)."""
    size = struct.unpack("<I", data[-8:-4])[0]
    footer = data[-8 - size : -8]
    tree, _ = _read(footer, 0, STRUCT)

    def walk(node, path):
        if node[0] == "struct":
            for field in node[1]:
                fid, ftype, value = field
                if ftype in (I16, I32, I64):
                    new = edit((*path, fid), value)
                    if new is not None:
                        field[2] = new
                elif ftype == STRUCT:
                    walk(value, (*path, fid))
                elif ftype in (LIST, SET) and value[1] == STRUCT:
                    for item in value[2]:
                        walk(item, (*path, fid))

    walk(tree, ())
    new_footer = _write(STRUCT, tree)
    return data[: -8 - size] + new_footer + struct.pack("<I", len(new_footer)) + b"PAR1"


# FileMetaData: 3 num_rows, 4 row_groups; RowGroup: 2 total_byte_size, 3 num_rows;
# ColumnChunk: 3 meta_data; ColumnMetaData: 5 num_values, 6 total_uncompressed_size.
def lie_about_sizes(path: tuple[int, ...], value: int) -> int | None:
    return 1 if path in ((4, 2), (4, 1, 3, 6)) else None


def lie_about_rows(path: tuple[int, ...], value: int) -> int | None:
    return 1 if path in ((3,), (4, 3)) else None


# --- files ---------------------------------------------------------------------------------------------------

MODIFIED = START + timedelta(hours=2)


def parquet_of(table: pa.Table, **write) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, **write)
    return sink.getvalue()


def metadata_for(data: bytes, rows: int, zipcodes: Counter, hotkey: str = "hk1") -> bytes:
    return EpochMetadata(
        hotkey=hotkey,
        epoch_id=CTX.epoch_id,
        nonce=CTX.nonce,
        schema_version=SCHEMA_VERSION,
        row_count=rows,
        zipcode_counts=dict(zipcodes),
        parquet_sha256=sha256_hex(data),
        scraper=ScraperInfo(name="hostile", version="1"),
        started_at=iso_z(START),
        finished_at=iso_z(START),
    ).to_json()


def submission_of(
    data: bytes, rows: int = 10, zipcodes: Counter | None = None, metadata: bytes | None = None, hotkey: str = "hk1"
) -> Submission:
    meta = metadata if metadata is not None else metadata_for(data, rows, zipcodes or Counter({"08540": 5, "19103": 5}), hotkey)
    return Submission(hotkey, 1, data, meta, MODIFIED, MODIFIED)


def honest_table() -> pa.Table:
    return table_from_rows(honest_rows())


def _with(table: pa.Table, name: str, column) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, column)


def _string_bytes(value: bytes, n: int) -> pa.Array:
    return pa.array([value] * n, pa.binary()).view(pa.string())


def corpus() -> Iterator[tuple[str, Submission]]:
    """(name, submission) for every class of hostile file."""
    base = honest_table()
    n = base.num_rows
    # JSON
    yield "metadata nested 100k deep", submission_of(parquet_of(base), metadata=b"[" * 100_000 + b"]" * 100_000)
    yield (
        "metadata nested inside an object",
        submission_of(
            parquet_of(base), metadata=json.dumps({"hotkey": "hk1"}).encode()[:-1] + b', "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"
        ),
    )
    yield "metadata of 2 MB", submission_of(parquet_of(base), metadata=b'{"pad": "' + b"x" * 2_000_000 + b'"}')
    yield "metadata with a 5000-digit integer", submission_of(parquet_of(base), metadata=b'{"rowCount": ' + b"9" * 5000 + b"}")
    yield "metadata of invalid UTF-8", submission_of(parquet_of(base), metadata=b'{"hotkey": "\xff\xfe"}')
    yield (
        "metadata with a million zipcodes",
        submission_of(parquet_of(base), metadata=json.dumps({"zipcodeCounts": {str(i): 1 for i in range(200_000)}}).encode()),
    )
    # encodings that expand
    rows = 50_000
    many = base.take(pa.array([i % n for i in range(rows)]))
    big = pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), pa.array(["1 " + "x" * 300_000]))
    expanding = parquet_of(_with(many, "address", big), compression="zstd")
    yield "dictionary-encoded 300 KB value on 50,000 rows", submission_of(expanding, rows, Counter(many["zipcode"].to_pylist()))
    plain = _with(base.take(pa.array([i % n for i in range(2000)])), "address", pa.array(["2 " + "y" * 150_000] * 2000))
    plain_rows = Counter(plain["zipcode"].to_pylist())
    compressed = parquet_of(plain, compression="zstd", use_dictionary=False)
    yield "zstd-compressed 300 MB of plain strings", submission_of(compressed, 2000, plain_rows)
    yield "footer that lies about decoded sizes", submission_of(rewrite_footer(compressed, lie_about_sizes), 2000, plain_rows)
    yield (
        "footer that lies about row counts",
        submission_of(rewrite_footer(parquet_of(base), lie_about_rows), 1, Counter({"08540": 1})),
    )
    yield (
        "300,000 rows (footer honest)",
        submission_of(parquet_of(base.take(pa.array([0] * 300_000))), 300_000, Counter({"08540": 300_000})),
    )
    # invalid UTF-8, NaN and infinities, impossible moments, absurd lengths: in every column of their kind
    for field in LISTING_SCHEMA:
        if pa.types.is_string(field.type):
            yield (
                f"invalid UTF-8 in {field.name}",
                submission_of(parquet_of(_with(base, field.name, _string_bytes(b"a\xff\xfe", n)))),
            )
            yield (
                f"300 KB strings in {field.name}",
                submission_of(parquet_of(_with(base, field.name, pa.array(["9" * 300_000] * n)))),
            )
        if pa.types.is_floating(field.type):
            for bad in (float("nan"), float("inf"), float("-inf")):
                yield f"{bad} in {field.name}", submission_of(parquet_of(_with(base, field.name, pa.array([bad] * n))))
    for name, value in (
        ("scraped_timestamp", "2025-10-01T17:00:99.000Z"),
        ("scraped_timestamp", "2025-02-31T17:00:00Z"),
        ("listing_date", "2025-02-31"),
        ("listing_date", "2025-09-00"),
    ):
        yield f"impossible {name} {value}", submission_of(parquet_of(_with(base, name, pa.array([value] * n))))
    # physical and logical types that differ from the schema
    yield "price as strings", submission_of(parquet_of(_with(base, "price", pa.array(["500000"] * n))))
    yield "bedrooms as int32", submission_of(parquet_of(_with(base, "bedrooms", pa.array([3] * n, pa.int32()))))
    yield "sqft as doubles", submission_of(parquet_of(_with(base, "sqft", pa.array([1800.5] * n))))
    yield "price as decimals", submission_of(parquet_of(_with(base, "price", pa.array([500000] * n, pa.decimal128(12, 2)))))
    yield "city as binary", submission_of(parquet_of(_with(base, "city", pa.array([b"Princeton"] * n, pa.binary()))))
    yield (
        "timestamps as timestamps",
        submission_of(parquet_of(_with(base, "scraped_timestamp", pa.array([START] * n, pa.timestamp("ms", tz="UTC"))))),
    )
    yield "zipcode as a list", submission_of(parquet_of(_with(base, "zipcode", pa.array([["08540"]] * n))))
    yield (
        "duplicate column names",
        submission_of(parquet_of(pa.Table.from_arrays([*base.columns, base["price"]], names=[*base.column_names, "price"]))),
    )
    yield (
        "addresses as large strings (allowed)",
        submission_of(parquet_of(_with(base, "address", base["address"].cast(pa.large_string())))),
    )
    # not parquet at all, truncated, cut footers
    good = parquet_of(base)
    for name, data in (
        ("empty file", b""),
        ("truncated file", good[: len(good) // 2]),
        ("no magic", good[:-4] + b"XXXX"),
        ("footer length past the start", good[:-8] + struct.pack("<I", 10**9) + b"PAR1"),
    ):
        yield name, submission_of(data)
    yield "an honest file (control)", submission_of(good)
    yield (
        "honest rows with a listing the snapshot lacks (control)",
        submission_of(parquet_of(table_from_rows([*honest_rows()[:-1], row(77, "19103")]))),
    )
