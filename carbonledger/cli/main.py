"""`carbonledger`: run, inspect and exercise the carbon inclusion ledger."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from carbonledger.contracts.partners import PartnerRegistry, load_registry
from carbonledger.contracts.settings import Settings, load_settings
from carbonledger.ops import stack
from carbonledger.ops.lifecycle import down, reset, status, up

if TYPE_CHECKING:
    from carbonledger.contracts.methodology import Methodology


def _batch_inputs(
    args: argparse.Namespace, settings: Settings
) -> tuple[PartnerRegistry, list[Methodology], Iterator[bytes]]:
    """Partner registry, methodologies (files from the options, else the settings), stdin lines."""
    from carbonledger.contracts.methodology_files import load_methodologies

    registry = load_registry(args.partners or settings.partners_file)
    methodologies = load_methodologies(args.registry or settings.methodology_dir)
    lines = (raw for raw in sys.stdin.buffer.read().splitlines() if raw.strip())
    return registry, methodologies, lines


def _employer(args: argparse.Namespace, settings: Settings) -> int:
    import psycopg

    from carbonledger.contracts.envelope import SUBJECT_PATTERN
    from carbonledger.services.ledger.adapters.books import Books

    bad = [s for s in args.subjects if not SUBJECT_PATTERN.match(s)]
    if bad:
        print(f"not subject ids: {', '.join(bad)}", file=sys.stderr)
        return 2
    with psycopg.connect(settings.pg_conninfo, autocommit=True) as conn:
        print(
            f"linked {Books(conn).link_employer(args.employer, args.subjects)} to {args.employer}"
        )
    return 0


def _audit(args: argparse.Namespace, settings: Settings) -> int:
    import psycopg

    from carbonledger.contracts.regions import load_regions
    from carbonledger.services.ledger.adapters import audit

    if args.command == "verify-export":
        report = audit.verify_export(args.folder)
    else:
        with psycopg.connect(settings.pg_conninfo, autocommit=True) as conn:
            if args.command == "export":
                out = args.out or Path(f"export-{args.region}-{args.first}-{args.last}")
                summary = audit.export(
                    conn,
                    load_regions(),
                    settings.methodology_dir,
                    args.region,
                    args.first,
                    args.last,
                    out,
                )
                print(json.dumps({"folder": str(out), **summary}, indent=2, ensure_ascii=False))
                return 0
            account = tuple(args.account.split(":", 1)) if args.account else None
            report = audit.verify(conn, account)
    print(json.dumps(report.as_json(), indent=2, default=str))
    return 0 if report.ok else 1


def _settle(args: argparse.Namespace, settings: Settings) -> int:
    from carbonledger.contracts.envelope import source_of
    from carbonledger.reference.settle import settle

    registry, methodologies, lines = _batch_inputs(args, settings)
    result = settle(
        ((source_of(raw), raw) for raw in lines),
        registry,
        methodologies,
        datetime.now(UTC),
        window=settings.dedupe_window,
    )
    print(json.dumps(result.as_json(), indent=2, sort_keys=True))
    return 0


def _dlq(args: argparse.Namespace, settings: Settings) -> int:
    from carbonledger.ops import dlq

    chosen = dlq.Selection(frozenset(args.ids), args.partner, args.reason, args.stage)
    if args.action == "replay" and not (args.ids or args.partner or args.reason or args.all):
        print("replay needs dead letter ids, --partner, --reason or --all", file=sys.stderr)
        return 2
    letters = [letter for letter in dlq.dead_letters(settings) if chosen.matches(letter)]
    if args.action == "list":
        for letter in letters:
            print(dlq.summary_line(letter))
        print(f"{len(letters)} dead letters", file=sys.stderr)
    elif args.action == "show":
        for letter in letters:
            print(dlq.details(letter))
    else:
        print(f"replayed {dlq.replay(settings, letters)} dead letters to their origin topics")
    return 0 if letters or args.action == "list" else 1


def _quantify(args: argparse.Namespace, settings: Settings) -> int:
    from carbonledger.reference.offline import quantify_lines

    registry, methodologies, lines = _batch_inputs(args, settings)
    for result in quantify_lines(lines, registry, methodologies, datetime.now(UTC)):
        print(json.dumps(result, ensure_ascii=False))
    return 0


def _methodologies(args: argparse.Namespace, settings: Settings) -> int:
    from carbonledger.contracts.methodology_files import load_methodologies, publish

    if args.action == "publish":
        for path in args.ids:
            print(f"published {Path(path).name}: sha256 {publish(Path(path))}")
        return 0
    folder = args.registry or settings.methodology_dir
    methodologies = load_methodologies(folder)
    if args.action == "list":
        for m in sorted(methodologies, key=lambda m: (m.id, m.version)):
            state = "active" if m.active else "inactive"
            print(
                f"{m.id + '@' + m.version:<34} {state:<8} {m.region:<8} from {m.valid_from}  "
                f"{m.formula.value:<22} {', '.join(sorted(m.behaviours))}  {m.title_zh}"
            )
        return 0
    shown = [m for m in methodologies if m.id in args.ids]
    if not shown:
        print(f"no methodology {', '.join(args.ids)}", file=sys.stderr)
        return 1
    for m in shown:
        print(json.dumps(m.model_dump(mode="json"), ensure_ascii=False, indent=2, sort_keys=True))
    return 0


def _monitoring(args: argparse.Namespace, settings: Settings) -> int:
    from carbonledger.ops import monitoring as mon

    if args.action == "metrics":
        for f in mon.exported_families():
            labels = ",".join(f.labels)
            print(f"{f.name:<58} {f.type:<9} {{{labels}}}  {f.documentation}")
        return 0
    if args.action == "lint":
        families = mon.exported_families()
        problems = mon.naming_problems(families) + mon.rule_problems(
            [*mon.alert_rules(), *mon.dashboard_queries()], families
        )
        print("\n".join(problems) or f"{len(families)} metric families, rules and dashboards: ok")
        return 1 if problems else 0
    if args.action == "config":
        print(mon.render(mon.scrape_config(settings)), end="")
        return 0
    if args.action == "start":
        path = mon.write_local_config(settings)
        stack.script("prometheus", "start", settings, env=mon.prometheus_env(settings, path))
        print(f"prometheus: http://127.0.0.1:{settings.prometheus_port + settings.port_offset}")
        return 0
    return stack.script(
        "prometheus", args.action, settings, check=False, env=mon.prometheus_env(settings)
    )


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    from carbonledger.bench import report as bench_report
    from carbonledger.bench.run import BenchOptions, run_bench

    options = BenchOptions(
        people=args.people,
        activities=args.activities,
        rate=args.rate,
        seed=args.seed,
        relay=args.relay,
        fresh=args.fresh,
        workers=args.workers,
        json_out=args.json,
        plot=args.plot,
    )
    report, latencies = run_bench(settings, options)
    print(bench_report.table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
        print(f"wrote {args.json}")
    if args.plot:
        for path in bench_report.plot(report, latencies, args.plot):
            print(f"wrote {path}")
    return 0 if report["correct"] else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carbonledger", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("up", help="start Kafka, PostgreSQL and every service")
    p.add_argument("--workers", type=int, default=1, help="processes per consumer group")
    p = sub.add_parser("down", help="stop what `up` started")
    p.add_argument("--keep-infra", action="store_true", help="leave Kafka and PostgreSQL running")
    sub.add_parser("status", help="show each component and whether it is up")
    p = sub.add_parser("demo", help="run the pipeline on the bundled sample and print the ledger")
    p.add_argument("--sample", type=Path, default=None)
    p.add_argument("--keep-running", action="store_true")
    p.add_argument(
        "--keep-data", action="store_true", help="run on the existing data instead of a fresh stack"
    )
    sub.add_parser("reset", help="stop everything and delete the local stack's data")
    p = sub.add_parser("topics", help="create or list the topic map")
    p.add_argument("action", choices=["create", "list"])
    sub.add_parser("kafka-access", help="create the partner and service Kafka users and their ACLs")
    p = sub.add_parser("db", help="database schema")
    p.add_argument("action", choices=["migrate"])
    p = sub.add_parser("employer", help="link people to an employer account (a personal view)")
    p.add_argument("action", choices=["link"])
    p.add_argument("employer")
    p.add_argument("subjects", nargs="+", help="subject ids (64 hex characters)")
    p = sub.add_parser("verify", help="recompute the ledger's hash chains and check the books")
    p.add_argument("--account", help="one account, as BOOK:ACCOUNT (e.g. government:440305)")
    p = sub.add_parser("export", help="write a verification package for a region and period")
    p.add_argument("--region", required=True, help="six-digit code; 000000 for national")
    p.add_argument("--from", dest="first", type=date.fromisoformat, required=True)
    p.add_argument("--to", dest="last", type=date.fromisoformat, required=True)
    p.add_argument("--out", type=Path, help="folder (default: export-<region>-<from>-<to>)")
    p = sub.add_parser("verify-export", help="check a verification package offline")
    p.add_argument("folder", type=Path)
    p = sub.add_parser("settle", help="batch reference: partner events (JSON lines) on stdin")
    p.add_argument("--partners", type=Path)
    p.add_argument("--registry", type=Path)
    p = sub.add_parser("quantify", help="quantify partner events (JSON lines) on stdin")
    p.add_argument("--partners", type=Path)
    p.add_argument("--registry", type=Path)
    p = sub.add_parser(
        "recompute", help="correcting claims for a period after a methodology version changes"
    )
    p.add_argument(
        "--methodology", required=True, help="methodology id the events were credited under"
    )
    p.add_argument("--from", dest="first", type=date.fromisoformat, required=True)
    p.add_argument("--to", dest="last", type=date.fromisoformat, required=True)
    p.add_argument("--registry", type=Path)
    p.add_argument("--dry-run", action="store_true", help="count, publish nothing")
    p = sub.add_parser("methodologies", help="list, show or publish methodology versions")
    p.add_argument("action", choices=["list", "show", "publish"])
    p.add_argument("ids", nargs="*", help="show: methodology ids; publish: new version files")
    p.add_argument("--registry", type=Path)
    p = sub.add_parser("dlq", help="list, show or replay dead letters (behaviour.rejected)")
    p.add_argument("action", choices=["list", "show", "replay"])
    p.add_argument("ids", nargs="*", help="dead letter ids (show, replay)")
    p.add_argument("--partner")
    p.add_argument("--reason")
    p.add_argument("--stage", choices=["ingest", "quantify", "dedupe"])
    p.add_argument("--all", action="store_true", help="replay: every dead letter selected")
    p = sub.add_parser("monitoring", help="metrics, naming lint, and a local Prometheus")
    p.add_argument("action", choices=["metrics", "lint", "config", "start", "stop", "status"])
    p = sub.add_parser("bench", help="a simulated city through the running services, measured")
    p.add_argument("--people", type=int, default=100_000)
    p.add_argument("--activities", type=int, default=200_000, help="activities to simulate")
    p.add_argument(
        "--rate", type=float, default=0.0, help="records/s offered (0: as fast as possible)"
    )
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--relay", action="store_true", help="also measure the plain-aiokafka ceiling")
    p.add_argument("--fresh", action="store_true", help="reset the local stack first")
    p.add_argument("--workers", type=int, default=1, help="processes per consumer group")
    p.add_argument("--json", type=Path, help="write the report as JSON here")
    p.add_argument("--plot", type=Path, help="write PNG charts into this folder")
    sub.add_parser("schemas", help="regenerate docs/contract (JSON Schemas, AsyncAPI, OpenAPI)")
    p = sub.add_parser("sample", help="regenerate the bundled sample of partner traffic")
    p.add_argument("--out", type=Path, default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    settings = load_settings()
    if args.command == "up":
        up(settings, args.workers)
    elif args.command == "down":
        down(settings, args.keep_infra)
    elif args.command == "status":
        return status(settings)
    elif args.command == "demo":
        from carbonledger.demo.run import run
        from carbonledger.demo.sample import SAMPLE_FILE

        return run(settings, args.sample or SAMPLE_FILE, args.keep_running, args.keep_data)
    elif args.command == "reset":
        reset(settings)
    elif args.command == "topics":
        from carbonledger.ops.admin import ensure_topics, topic_map

        specs = topic_map(settings, load_registry(settings.partners_file))
        if args.action == "create":
            print("created:", ", ".join(ensure_topics(settings, specs)) or "nothing (all exist)")
        else:
            for s in specs:
                print(f"{s.name:<48} {s.partitions:>3}  {s.cleanup_policy:<8} key={s.key}")
    elif args.command == "kafka-access":
        from carbonledger.ops.kafka_access import access_map, apply_access

        report = apply_access(settings, access_map(settings))
        print(
            f"{report.users} users, {report.acls} ACLs: "
            f"{report.created} created, {report.removed} removed"
        )
    elif args.command == "db":
        from carbonledger.services.ledger.adapters.migrations import migrate

        print("applied:", ", ".join(migrate(settings.pg_conninfo)) or "nothing (up to date)")
    elif args.command == "employer":
        return _employer(args, settings)
    elif args.command in ("verify", "export", "verify-export"):
        return _audit(args, settings)
    elif args.command == "settle":
        return _settle(args, settings)
    elif args.command == "quantify":
        return _quantify(args, settings)
    elif args.command == "methodologies":
        return _methodologies(args, settings)
    elif args.command == "schemas":
        from carbonledger.ops.contract_docs import write

        for path in write():
            print(f"wrote {path}")
    elif args.command == "dlq":
        return _dlq(args, settings)
    elif args.command == "bench":
        return _bench(args, settings)
    elif args.command == "monitoring":
        return _monitoring(args, settings)
    elif args.command == "recompute":
        from carbonledger.ops.recompute import recompute

        result = recompute(
            settings, args.methodology, args.first, args.last, args.registry, args.dry_run
        )
        print(json.dumps(result, indent=2))
    elif args.command == "sample":
        from carbonledger.demo.sample import write_sample

        print(write_sample(args.out) if args.out else write_sample())
    return 0


if __name__ == "__main__":
    sys.exit(main())
