"""``resi-data``: the consumer's tool for the validated listings (``pip install '.[data]'``).

    resi-data sync [--from DIR | --s3.bucket B [--s3.endpoint URL]] [--validators HK,... | chain flags]
    resi-data sql "SELECT ..."                 any query over the views (docs/data.md)
    resi-data history LISTING_ID               one listing, epoch by epoch, with its change log
    resi-data changes --since EPOCH|DURATION [--zip Z]
    resi-data market --zip Z [--since EPOCH|DURATION]
    resi-data coverage [--zip Z] [--since EPOCH|DURATION]
    resi-data report --zip Z [--zip Z ...] --out report.html

Every query command prints a table, or ``--format csv|json|parquet`` (to ``--out FILE`` or stdout).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa

from resi import constants as c
from resi.config import HelpFormatter, Parser, chain_endpoint, chain_name, env, number
from resi.data.mirror import BucketSource, FolderSource, Mirror, Source, print_progress, trust_list

DEFAULT_MIRROR = "~/.resi/data"
_DURATION = re.compile(r"^(\d+)([hdw])$")
_EPOCH = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}-[0-9]{2}-[0-9]{2}$")


def since_epoch(text: str, now: datetime | None = None) -> str:
    """An epoch id from ``--since``: an epoch id as it is, or a duration back from now (``12h``, ``3d``, ``2w``)."""
    if _EPOCH.match(text):
        return text
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r}: give an epoch id (2025-10-01T16-00-00) or a duration (12h, 3d, 2w)")
    hours = int(match.group(1)) * {"h": 1, "d": 24, "w": 168}[match.group(2)]
    moment = (now or datetime.now(timezone.utc)) - timedelta(hours=hours)
    return moment.strftime(c.EPOCH_ID_FORMAT)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="resi-data", description=__doc__)
    p.add_argument(
        "--mirror",
        default=env("RESI_DATA_MIRROR", default=DEFAULT_MIRROR),
        help="the local mirror of the published epochs [env RESI_DATA_MIRROR]",
    )
    commands = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sync = commands.add_parser(
        "sync", help="mirror the published epochs (incremental, verified, resumable)", formatter_class=HelpFormatter
    )
    where = sync.add_argument_group("where the published epochs are (one of)")
    where.add_argument("--from", dest="folder", help="a folder: a copy of the bucket, or a local network's run folder")
    where.add_argument(
        "--s3.bucket", dest="bucket", default=env("RESI_DATA_BUCKET"), help="the validators' bucket [env RESI_DATA_BUCKET]"
    )
    where.add_argument(
        "--s3.endpoint",
        dest="endpoint",
        default=env("RESI_DATA_S3_ENDPOINT"),
        help="S3 endpoint (default AWS); credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
        "or boto3's usual chain [env RESI_DATA_S3_ENDPOINT]",
    )
    where.add_argument(
        "--s3.region",
        dest="region",
        default=env("AWS_DEFAULT_REGION", default="us-east-1"),
        help="S3 region [env AWS_DEFAULT_REGION]",
    )
    trust = sync.add_argument_group(
        "whose epochs are accepted (signed by a hotkey with a validator permit, read from the chain; or the hotkeys given)"
    )
    trust.add_argument(
        "--validators", default=None, help="comma-separated hotkeys to accept instead of the chain's permit holders"
    )
    trust.add_argument(
        "--netuid",
        type=number(int, 0, 65535),
        default=env("NET_UID", default=str(c.NETUID)),
        help="the subnet whose validators are trusted [env NET_UID]",
    )
    trust.add_argument(
        "--subtensor.network",
        dest="network",
        type=chain_name,
        default=env("BT_SUBTENSOR_NETWORK", default="finney"),
        help=f"{', '.join(c.NETWORKS)} or a ws(s):// endpoint [env BT_SUBTENSOR_NETWORK]",
    )
    trust.add_argument(
        "--subtensor.chain_endpoint",
        dest="chain_endpoint",
        type=chain_endpoint,
        default=env("BT_SUBTENSOR_CHAIN_ENDPOINT"),
        help="overrides --subtensor.network (sim:PATH: a local network's chain) [env BT_SUBTENSOR_CHAIN_ENDPOINT]",
    )

    def query(name: str, text: str) -> argparse.ArgumentParser:
        q = commands.add_parser(name, help=text, formatter_class=HelpFormatter)
        q.add_argument(
            "--min-validators",
            dest="min_validators",
            type=number(int, 1),
            default=None,
            help="validators that must have published a state for it to count (default: a majority of "
            "those that published the epoch)",
        )
        q.add_argument("--format", choices=("table", "csv", "json", "parquet"), default="table")
        q.add_argument("--out", default=None, help="write to this file instead of stdout (parquet needs it)")
        q.add_argument("--limit", type=number(int, 1), default=200, help="rows a table shows at most")
        return q

    query("sql", "run a query over the views").add_argument("query", help="SQL (DuckDB) over the documented views")
    query("history", "one listing, epoch by epoch").add_argument("listing_id")
    changes = query("changes", "what changed: new, price cuts and raises, pending, sold, withdrawn, relisted")
    changes.add_argument("--since", required=True, type=since_epoch, help="an epoch id, or 12h, 3d, 2w back")
    changes.add_argument("--zip", dest="zipcodes", action="append", default=None, help="only this zipcode")
    market = query("market", "inventory, prices, days on market, new and sold per epoch")
    market.add_argument("--zip", dest="zipcodes", action="append", required=True, help="zipcode (repeatable)")
    market.add_argument("--since", type=since_epoch, default=None, help="an epoch id, or 12h, 3d, 2w back")
    coverage = query("coverage", "per zipcode and epoch: expected, proven, validators agreeing")
    coverage.add_argument("--zip", dest="zipcodes", action="append", default=None, help="only this zipcode")
    coverage.add_argument("--since", type=since_epoch, default=None, help="an epoch id, or 12h, 3d, 2w back")
    report = commands.add_parser(
        "report", help="one self-contained HTML page: charts and the latest listings", formatter_class=HelpFormatter
    )
    report.add_argument("--zip", dest="zipcodes", action="append", required=True, help="zipcode (repeatable)")
    report.add_argument("--since", type=since_epoch, default=None, help="an epoch id, or 12h, 3d, 2w back")
    report.add_argument("--out", required=True, help="the HTML file to write")
    report.add_argument("--min-validators", dest="min_validators", type=number(int, 1), default=None, help="as for the queries")
    return p


def _trusted(args: argparse.Namespace):
    if args.validators:
        return trust_list(
            h.strip() for h in args.validators.split(",") if h.strip()
        ), f"{len(args.validators.split(','))} hotkeys given"
    from resi.chain import open_chain

    spec = args.chain_endpoint or args.network

    async def permits() -> set[str]:
        chain = open_chain(spec, args.netuid)
        try:
            graph = await chain.metagraph()
        finally:
            await chain.close()
        return {n.hotkey for n in graph.neurons if n.validator_permit}

    holders = asyncio.run(permits())
    return trust_list(holders), f"{len(holders)} validator permit holders on netuid {args.netuid} ({spec})"


def sync_main(args: argparse.Namespace) -> int:
    if bool(args.folder) == bool(args.bucket):
        print("resi-data sync: give where the published epochs are: --from DIR or --s3.bucket NAME", file=sys.stderr)
        return 2
    source: Source
    if args.folder:
        source = FolderSource(Path(args.folder).expanduser())
    else:
        from resi.storage.bucket import BucketReader, BucketSettings

        source = BucketSource(
            BucketReader(
                BucketSettings(
                    args.bucket,
                    args.endpoint,
                    args.region,
                    os.environ.get("AWS_ACCESS_KEY_ID"),
                    os.environ.get("AWS_SECRET_ACCESS_KEY"),
                )
            )
        )
    try:
        trusted, who = _trusted(args)
    except Exception as exc:  # the chain cannot be read: nothing is trusted, say how to proceed
        print(
            f"resi-data sync: cannot read the validators from the chain ({exc}); give --subtensor.chain_endpoint "
            "or --validators HK,...",
            file=sys.stderr,
        )
        return 2
    mirror = Mirror(Path(args.mirror).expanduser())
    print(f"[sync] trusting {who}; mirror {mirror.root}", file=sys.stderr)
    report = mirror.sync(source, trusted, print_progress)
    for where, why in sorted(report.rejected.items()):
        print(f"[sync] rejected {where}: {why}", file=sys.stderr)
    print(
        f"[sync] {len(report.mirrored)} new published epochs, {report.already} already mirrored, "
        f"{len(report.rejected)} rejected (kept out of every query; listed in {mirror.root / 'rejected.json'})",
        file=sys.stderr,
    )
    return 0


def _where(column: str, values: list[str] | None) -> tuple[str, list]:
    if not values:
        return "", []
    return f" AND {column} IN ({', '.join('?' for _ in values)})", list(values)


def query_sql(args: argparse.Namespace) -> tuple[str, list]:
    """The SQL and parameters of a query command."""
    if args.command == "sql":
        return args.query, []
    if args.command == "history":
        return (
            "SELECT l.epoch_id, l.listing_status, l.price, l.days_on_market, l.last_proven_at, l.proof, "
            "l.miners_proving, l.validators, "
            "(SELECT string_agg(o.listing_status || ' ' || o.price::VARCHAR || ' at ' || "
            "strftime(o.scraped_at, '%H:%M'), '; ' ORDER BY o.scraped_at) FROM observations o "
            "WHERE o.epoch_id = l.epoch_id AND o.listing_id = l.listing_id) AS observed "
            "FROM listings l WHERE l.listing_id = ? ORDER BY l.epoch_id",
            [args.listing_id],
        )
    if args.command == "changes":
        where, params = _where("zipcode", args.zipcodes)
        return (f"SELECT * FROM changes WHERE epoch_id >= ?{where} ORDER BY epoch_id, zipcode, listing_id", [args.since, *params])
    where, params = _where("zipcode", args.zipcodes)
    since = " AND epoch_id >= ?" if args.since else ""
    view = "market" if args.command == "market" else "coverage"
    return (
        f"SELECT * FROM {view} WHERE TRUE{where}{since} ORDER BY zipcode, epoch_id",
        [*params, *([args.since] if args.since else [])],
    )


def _emit(relation, args: argparse.Namespace) -> None:
    if args.format == "parquet":
        if not args.out:
            raise SystemExit("resi-data: --format parquet needs --out FILE")
        import pyarrow.parquet as pq

        pq.write_table(relation.to_arrow_table(), args.out, compression="zstd")
        return
    out = open(args.out, "w", newline="") if args.out else sys.stdout
    try:
        if args.format == "csv":
            table = relation.to_arrow_table()
            import csv

            writer = csv.writer(out)
            writer.writerow(table.column_names)
            for row in zip(*(table[n].to_pylist() for n in table.column_names)):
                writer.writerow(["" if v is None else v for v in row])
        elif args.format == "json":
            table = relation.to_arrow_table()
            json.dump(table.to_pylist(), out, default=str, indent=1)
            out.write("\n")
        else:
            out.write(_table(relation, args.limit))
    finally:
        if args.out:
            out.close()


def _table(relation, limit: int) -> str:
    """A readable table: a header, aligned columns, numbers right-aligned."""
    table = relation.to_arrow_table()
    names = table.column_names
    rows = [["" if v is None else _cell(v) for v in row] for row in zip(*(table[n].to_pylist() for n in names))]
    shown = rows[:limit]
    widths = [max([len(n)] + [len(r[i]) for r in shown]) for i, n in enumerate(names)]
    numeric = [
        pa.types.is_integer(f.type) or pa.types.is_floating(f.type) or pa.types.is_decimal(f.type) for f in table.schema
    ]  # by type: a zipcode is text, whatever it looks like

    def line(cells) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric)).rstrip()

    text = [line(names), line(["-" * w for w in widths])] + [line(r) for r in shown]
    if len(rows) > limit:
        text.append(f"... {len(rows) - limit} more rows (--limit, or --format csv|json|parquet)")
    if not rows:
        text.append("(no rows)")
    return "\n".join(text) + "\n"


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 1000 else f"{value:g}"
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "sync":
        return sync_main(args)
    import duckdb

    from resi.data.views import connect

    mirror = Mirror(Path(args.mirror).expanduser())
    if not mirror.manifests():
        print(f"resi-data: the mirror {mirror.root} has no published epoch yet: run resi-data sync first", file=sys.stderr)
    con = connect(mirror, args.min_validators)
    if args.command == "report":
        from resi.data.report import build

        Path(args.out).write_text(build(con, args.zipcodes, args.since))
        print(f"resi-data: report written to {args.out}", file=sys.stderr)
        return 0
    sql, params = query_sql(args)
    try:
        relation = con.sql(sql, params=params) if params else con.sql(sql)
        if relation is None:
            return 0
        _emit(relation, args)
    except duckdb.Error as exc:
        print(f"resi-data: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
