"""The ``orderhub`` command line: one entry point for operators, customer service and the demo."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orderhub import clock
from orderhub.config import home_dir, load_settings
from orderhub.errors import ConfigError, OrderhubError
from orderhub.log import setup_logging

app = typer.Typer(help="orderhub: every order from every channel, one customer per person.", no_args_is_help=True)
sandbox_app = typer.Typer(help="The embedded sandbox: generated business + channel emulators on loopback.")
flows_app = typer.Typer(help="Prefect flows and schedules.")
bench_app = typer.Typer(help="Benchmarks (figures, never test assertions).")
webhooks_app = typer.Typer(help="Receive channel webhooks (Shopify, WooCommerce) and land them.")
customers_app = typer.Typer(help="Customer identity: deduplicate people lists, explain and correct links.")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(flows_app, name="flows")
app.add_typer(bench_app, name="bench")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(customers_app, name="customers")
console = Console()

HomeOpt = Annotated[Path | None, typer.Option("--home", help="orderhub home (default $ORDERHUB_HOME or ./var)")]


def _home(home: Path | None) -> Path:
    root = (home or home_dir()).resolve()
    os.environ["ORDERHUB_HOME"] = str(root)
    # Prefect keeps its database and logs inside the home unless the operator chose otherwise.
    os.environ.setdefault("PREFECT_HOME", str(root / "prefect"))
    # The local Prefect server's telemetry heartbeat phones home (there is no internet here) and, racing
    # the flow's own writes on the server's SQLite file, logs "database is locked" tracebacks.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    root.mkdir(parents=True, exist_ok=True)
    if (root / "sandbox" / "clock.json").exists():
        clock.use_offset_file(root / "sandbox" / "clock.json")
    return root


def _settings(home: Path | None) -> Any:
    return load_settings(_home(home))


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logging")] = False) -> None:
    """Configure logging for every command."""
    setup_logging("DEBUG" if verbose else "WARNING")


# -- the pipeline ----------------------------------------------------------------------------------
@app.command()
def sync(
    home: HomeOpt = None,
    store: Annotated[str | None, typer.Option(help="one store key")] = None,
    order: Annotated[list[str] | None, typer.Option(help="fetch this order id again (repeatable; Amazon getOrder)")] = None,
) -> None:
    """Land new and changed orders from every enabled store (or one); with --order, just those orders."""
    from orderhub import ops

    settings = _settings(home)
    if order:
        if not store:
            raise ConfigError("--order needs --store: the store the order belongs to")
        for result in ops.refetch_orders(settings, store, order):
            console.print(f"{result.channel}:{result.store} {result.stream}: {result.records} orders fetched by id")
        return
    for s in ops.enabled_stores(settings, store):
        with console.status(f"syncing {s.channel}:{s.key}"):
            for result in ops.sync_store(settings, s.key):
                console.print(f"{s.channel}:{s.key} {result.stream}: {result.records} records in {result.batches} batches")


@app.command()
def process(home: HomeOpt = None) -> None:
    """Normalize, dedupe and load everything landed and not processed yet."""
    from orderhub import ops

    settings = _settings(home)
    with _progress() as bar:
        task = bar.add_task("processing landed batches", total=None)
        result = ops.process(settings, progress=lambda done, total: bar.update(task, completed=done, total=total))
    _write_status(settings, result)
    console.print(
        f"{result.batches} batches: {result.inserted} new, {result.updated} updated, {result.unchanged} unchanged "
        f"orders; {result.quarantined} quarantined; {result.mirrors} mirrors; {result.customers} customers"
    )


@app.command()
def run(home: HomeOpt = None) -> None:
    """Run the whole pipeline once as a Prefect flow: sync → process → CRM → tags → export → report."""
    settings = _settings(home)
    from flows.orderhub_flows import pipeline_flow

    summary = pipeline_flow(str(settings.home))
    _write_status(settings, summary.process)
    _print_summary(settings, summary)


@app.command()
def export(home: HomeOpt = None) -> None:
    """Export paid, unfulfilled, merchant-fulfilled orders to the outbox (each order once, ever)."""
    from orderhub import ops

    result = ops.export(_settings(home))
    console.print(result)


@app.command()
def report(home: HomeOpt = None) -> None:
    """Publish today's daily report (DuckDB + HTML) under reports/daily/."""
    from orderhub import ops

    console.print(ops.report(_settings(home)))


@app.command()
def tags(home: HomeOpt = None) -> None:
    """Update the CRM store from the warehouse and re-tag VIP / at-risk customers."""
    from orderhub import ops

    settings = _settings(home)
    console.print(ops.update_crm(settings))
    console.print(ops.tag_customers(settings))
    for pushed in ops.push_shopify_tags(settings):
        console.print(pushed)


@app.command("import")
def import_(
    files: Annotated[list[Path], typer.Argument(help="saved raw API responses (JSON), or order feed files (CSV, JSON Lines, JSON)", exists=True, dir_okay=False)],
    channel: Annotated[str, typer.Option(help="amazon, shopify, woocommerce or feed")],
    store: Annotated[str, typer.Option(help="store key to file them under")] = "imported",
    home: HomeOpt = None,
) -> None:
    """Land saved raw API responses as if fetched (replays, support cases, migrations), or feed files; then run `process`."""
    from connectors.registry import importer
    from orderhub import ops

    settings = _settings(home)
    manifests = importer(channel)(list(files), store, ops.landing_store(settings))
    for m in manifests:
        console.print(f"landed {m.batch_id}: {m.records} records from {len(m.parts)} files")
    console.print("next: orderhub process")


# -- looking things up -----------------------------------------------------------------------------
@app.command()
def customer(
    query: Annotated[str, typer.Argument(help="e-mail, phone (any format), name, or order number of any channel")],
    home: HomeOpt = None,
) -> None:
    """Show one customer's whole history across every channel (reads the CRM store, live)."""
    from crm.store import CrmStore
    from service.lookup import find_customers, render_customer

    settings = _settings(home)
    crm = CrmStore(settings.crm_database_url)
    views = find_customers(crm, query)
    if not views:
        console.print(f"no customer matches {query!r}")
        raise typer.Exit(1)
    for view in views[:5]:
        console.print(render_customer(view))
    if len(views) > 5:
        console.print(f"… and {len(views) - 5} more; narrow the query")


@app.command()
def status(home: HomeOpt = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Per store and stream: last sync, cursor, how far behind now, landed and quarantined."""
    from orderhub.status import store_status

    settings = _settings(home)
    rows = store_status(settings)
    if as_json:
        console.print_json(json.dumps(rows, default=str))
        return
    table = Table(title=f"orderhub status — {settings.home}")
    for col in ("channel", "store", "stream", "last sync", "cursor", "behind", "batches", "landed", "loaded",
                "quarantined"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["channel"], r["store"], r["stream"], str(r["last_sync"] or "never"), str(r["cursor"] or ""),
                      r["behind"] or "", str(r["batches"]), str(r["landed"]), str(r.get("loaded", "")),
                      str(r.get("quarantined", "")))
    console.print(table)


def _write_status(settings: Any, result: Any) -> None:
    from orderhub.status import record_process_result

    record_process_result(settings, result)


# -- sandbox ---------------------------------------------------------------------------------------
@sandbox_app.command("up")
def sandbox_up(
    home: HomeOpt = None,
    orders: int = 3000,
    seed: int = 42,
    days: int = 90,
    speed: Annotated[float, typer.Option(help="rate-limit speed-up (1 = the channels' real budgets)")] = 1.0,
    port: Annotated[int, typer.Option(help="first of five ports (amazon, shopify, woocommerce, feed, storefront)")] = 8701,
) -> None:
    """Start the sandbox in the foreground and write orderhub.toml for it; Ctrl-C stops it."""
    from sandbox.server import Sandbox

    root = _home(home)
    sb = Sandbox(root, seed=seed, orders=orders, days=days, speed=speed, ports=tuple(port + i for i in range(5))).start()  # type: ignore[arg-type]
    for name, server in sb.servers.items():
        console.print(f"{name:12s} {server.url}")
    console.print(f"config written to {root / 'orderhub.toml'}; in another shell: orderhub run")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except (KeyboardInterrupt, SystemExit):
        sb.stop()


@sandbox_app.command("advance")
def sandbox_advance(days: float = 1.0, home: HomeOpt = None) -> None:
    """Move the sandbox clock forward: new orders, shipments, refunds and cancellations appear."""
    root = _home(home)
    path = root / "sandbox" / "clock.json"
    clock.use_offset_file(path)
    clock.set_offset(path, clock.offset() + __import__("datetime").timedelta(days=days))
    console.print(f"sandbox clock is now {clock.now().isoformat(timespec='seconds')}")


@app.command()
def demo(
    home: HomeOpt = None,
    orders: int = 3000,
    seed: int = 42,
) -> None:
    """Start the sandbox, run the whole pipeline once as a Prefect flow, and print a summary."""
    from sandbox.server import Sandbox

    root = _home(home)
    started = time.monotonic()
    with Sandbox(root, seed=seed, orders=orders) as sb:
        console.print(f"sandbox: {orders} orders over 90 days; emulators on "
                      + ", ".join(f"{k} {v.url}" for k, v in sb.servers.items()))
        settings = load_settings(root)
        from flows.orderhub_flows import pipeline_flow

        summary = pipeline_flow(str(root))
        _write_status(settings, summary.process)
        _print_summary(settings, summary)
    console.print(f"demo finished in {time.monotonic() - started:.0f}s")


def _print_summary(settings: Any, summary: Any) -> None:
    from orderhub.summary import render_summary

    console.print(render_summary(settings, summary))


# -- flows -----------------------------------------------------------------------------------------
@flows_app.command("serve")
def flows_serve(home: HomeOpt = None) -> None:
    """Serve every schedule locally (sync per store every 15 min, export hourly, report 06:00, tags nightly)."""
    from flows.serve import serve_all

    serve_all(_settings(home))


# -- webhooks ------------------------------------------------------------------------------------------
@webhooks_app.command("serve")
def webhooks_serve(
    home: HomeOpt = None,
    channel: Annotated[str, typer.Option(help="shopify (/webhooks/shopify) or woocommerce "
                                              "(/webhooks/woocommerce/STORE_KEY)")] = "shopify",
    host: Annotated[str, typer.Option(help="interface to bind (put a TLS proxy in front for HTTPS)")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="port (default 8081 for shopify, 8082 for woocommerce)")] = None,
) -> None:
    """Receive webhooks: verify each signature, land each delivery once (run one process per channel)."""
    if channel == "shopify":
        from connectors.shopify.webhooks import serve_webhooks
    elif channel == "woocommerce":
        from connectors.woocommerce.webhooks import serve_webhooks
    else:
        raise ConfigError(f"webhooks serve knows the channels shopify and woocommerce, not {channel!r}")
    serve_webhooks(_settings(home), host, port or (8081 if channel == "shopify" else 8082))


# -- customers ---------------------------------------------------------------------------------------
@customers_app.command("dedupe")
def customers_dedupe(
    input_path: Annotated[Path, typer.Option("--input", help="CSV with record_id and any of first_name, last_name, "
                                             "name, email, phone, line1, line2, city, region, postal_code, country")],
    output: Annotated[Path, typer.Option("--output", help="CSV written: record_id, cluster_id, match_probability")],
    review: Annotated[Path | None, typer.Option(help="also write the pairs for a person to review here (CSV)")] = None,
    auto_merge: Annotated[float, typer.Option(help="match probability that links a pair by itself")] = 0.995,
) -> None:
    """Deduplicate a customer list from an old CRM or a spreadsheet: one cluster per person."""
    from dedupe.people import ResolveSettings, read_people_csv, resolve_people

    if not input_path.is_file():
        raise ConfigError(f"--input {input_path} does not exist or is not a file")
    try:
        records = read_people_csv(input_path)
    except (ValueError, OSError) as exc:  # polars' CSV errors are ValueErrors too
        raise ConfigError(f"--input {input_path} cannot be read as a people list: {exc}") from None
    with console.status(f"resolving {records.height:,} records …"):
        result = resolve_people(records, settings=ResolveSettings(auto_merge=auto_merge))
    out = records.select("record_id").join(result.clusters, on="record_id", how="left", maintain_order="left")
    output.parent.mkdir(parents=True, exist_ok=True)
    out.select("record_id", "cluster_id", "match_probability").write_csv(output)
    if review is not None:
        result.review.write_csv(review)
    stats = result.stats
    console.print(f"{stats['records']:,} records -> {stats['clusters']:,} people "
                  f"({stats['auto_links']:,} probabilistic links, {stats['deterministic_pairs']:,} exact-key pairs, "
                  f"{stats['review_pairs']:,} pairs to review, {stats['flagged']:,} clusters flagged) "
                  f"in {stats['total_s']}s; written to {output}")


def _identity_keys(settings: Any, ref: str) -> list[str]:
    """Identity keys an argument names: an identity key itself, or a customer id (all its identities)."""
    import duckdb

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute("SELECT identity_key FROM customer_identities WHERE identity_key = ? OR customer_id = ? "
                           "ORDER BY identity_key", [ref, ref]).fetchall()
    if not rows:
        raise ConfigError(f"{ref!r} is neither an identity key nor a customer id in the warehouse; "
                          "`orderhub customer QUERY` shows a customer's identities")
    return [r[0] for r in rows]


def _override(home: Path | None, a: str, b: str, kind: str, note: str | None, author: str) -> None:
    from crm.store import CrmStore
    from orderhub import ops
    from orderhub.errors import LockedError

    settings = _settings(home)
    left, right = _identity_keys(settings, a)[0], _identity_keys(settings, b)[0]
    store = CrmStore(settings.crm_database_url)
    try:
        store.create_all()
        store.add_override(left, right, kind, author=author, note=note)
    finally:
        store.close()
    what = "merged" if kind == "must_link" else "kept apart"
    try:
        ops.process(settings)
    except LockedError:
        console.print(f"{left} and {right} will be {what}: recorded in the CRM store; a run in progress holds the "
                      "warehouse, and the next processing applies it")
        return
    console.print(f"{left} and {right} are {what} (recorded in the CRM store; every later run keeps it)")


IdentityArg = Annotated[str, typer.Argument(help="identity key, or a customer id (its first identity)")]
NoteOpt = Annotated[str | None, typer.Option(help="why (kept with the decision)")]
AuthorOpt = Annotated[str, typer.Option(help="who decided")]
DEFAULT_AUTHOR = os.environ.get("USER", "cli")


@customers_app.command("merge")
def customers_merge(a: IdentityArg, b: IdentityArg, note: NoteOpt = None,
                    author: AuthorOpt = DEFAULT_AUTHOR, home: HomeOpt = None) -> None:
    """Merge two customers (must-link), whatever the rules say; honoured by every later run."""
    _override(home, a, b, "must_link", note, author)


@customers_app.command("unmerge")
def customers_unmerge(a: IdentityArg, b: IdentityArg, note: NoteOpt = None,
                      author: AuthorOpt = DEFAULT_AUTHOR, home: HomeOpt = None) -> None:
    """Keep two identities apart (cannot-link), whatever the rules say; honoured by every later run."""
    _override(home, a, b, "cannot_link", note, author)


@customers_app.command("why")
def customers_why(a: IdentityArg, b: IdentityArg, home: HomeOpt = None) -> None:
    """Explain how two identities relate: the links joining them, or why they are apart."""
    from dedupe.explain import explain

    settings = _settings(home)
    left, right = _identity_keys(settings, a)[0], _identity_keys(settings, b)[0]
    for line in explain(settings, left, right):
        console.print(line, highlight=False)


@customers_app.command("review")
def customers_review(limit: int = 20, home: HomeOpt = None) -> None:
    """Pairs the model was unsure of, most likely first: decide them with `customers merge` / `unmerge`."""
    import duckdb

    settings = _settings(home)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute("""
            SELECT r.probability, r.left_key, l.name, r.right_key, rr.name, r.weights
            FROM customer_review r JOIN customer_identities l ON l.identity_key = r.left_key
            JOIN customer_identities rr ON rr.identity_key = r.right_key
            ORDER BY r.probability DESC LIMIT ?""", [limit]).fetchall()
        total = con.execute("SELECT count(*) FROM customer_review").fetchall()[0][0]
    table = Table(title=f"pairs to review ({total:,} in all)")
    for column in ("probability", "left", "name", "right", "name", "per-field weights"):
        table.add_column(column)
    for p, lk, ln, rk, rn, w in rows:
        table.add_row(f"{p:.3f}", lk, ln or "", rk, rn or "", w or "")
    console.print(table)


# -- benchmarks ------------------------------------------------------------------------------------
@bench_app.command("pipeline")
def bench_pipeline(
    orders: int = 1_000_000,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    workdir: Annotated[Path | None, typer.Option(help="where to generate (default: a temp folder)")] = None,
    keep: bool = False,
) -> None:
    """Generate landed raw payloads at scale and time normalize + dedupe + load."""
    from orderhub.bench import run_pipeline_bench

    result = run_pipeline_bench(orders, workdir=workdir, keep=keep, console=None if as_json else console)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=1) + "\n")


@bench_app.command("identity")
def bench_identity(
    persons: Annotated[int, typer.Option(help="people in the generated population")] = 300_000,
    new_people: Annotated[int, typer.Option(help="people added incrementally after the full run (0 = skip)")] = 5000,
    baseline: Annotated[bool, typer.Option(help="also run plain splink with near-default settings")] = True,
    seed: int = 1,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Identity resolution against the generator's truth: precision, recall, F1, time and memory."""
    from orderhub.bench_identity import identity_bench

    result = identity_bench(persons, seed=seed, new_people=new_people, baseline=baseline,
                            console=None if as_json else console)
    sys.stdout.write(json.dumps(result, indent=1) + "\n") if as_json else console.print_json(json.dumps(result))


@bench_app.command("crawl")
def bench_crawl(
    orders: Annotated[int, typer.Option(help="orders on the sample storefront site")] = 500,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Crawl the sample storefront admin site with AutoThrottle on; orders per second."""
    from orderhub.bench_crawl import crawl_speed

    result = crawl_speed(orders)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=1) + "\n")
    else:
        console.print_json(json.dumps(result))


@bench_app.command("api-time")
def bench_api_time(
    channel: Annotated[str, typer.Option(help="the channel to price: amazon or shopify")] = "amazon",
    orders_per_day: Annotated[int, typer.Option(help="the seller's daily orders")] = 5000,
    days: Annotated[int | None, typer.Option(help="days of history to backfill (amazon 365, shopify 20)")] = None,
    orders_api: Annotated[str, typer.Option(help="Amazon Orders API version: 2026-01-01 or v0")] = "2026-01-01",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run a real backfill and a 15-minute sync against the emulator; price its calls with the published limits."""
    from orderhub.bench_api import amazon_api_time, shopify_api_time

    quiet = None if as_json else console
    if channel == "shopify":
        result = shopify_api_time(orders_per_day, days=days or 20, console=quiet)
    elif channel == "amazon":
        if orders_api not in ("2026-01-01", "v0"):
            raise ConfigError(f"--orders-api must be 2026-01-01 or v0, not {orders_api!r}")
        result = amazon_api_time(orders_per_day, days=days or 365, orders_api=orders_api, console=quiet)
    else:
        raise ConfigError(f"bench api-time knows the channels 'amazon' and 'shopify', not {channel!r}")
    if as_json:
        sys.stdout.write(json.dumps(result, indent=1) + "\n")
    else:
        console.print_json(json.dumps(result))


def entrypoint() -> None:
    """Entry point that turns orderhub errors into a clear message and exit code 2."""
    try:
        app()
    except OrderhubError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from None
