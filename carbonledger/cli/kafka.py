"""Kafka administration: `topics create|list` and `kafka-access`."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from carbonledger.cli.common import JsonFlag, fail, finish, show_rows
from carbonledger.contracts.partners import load_registry
from carbonledger.contracts.settings import load_settings

topics_app = typer.Typer(help="Create or list the topic map.", no_args_is_help=True)


@topics_app.command("create")
def create_topics() -> None:
    """Create the topics of the map that do not exist yet."""
    from carbonledger.ops.admin import ensure_topics, topic_map

    settings = load_settings()
    specs = topic_map(settings, load_registry(settings.partners_file))
    print("created:", ", ".join(ensure_topics(settings, specs)) or "nothing (all exist)")


@topics_app.command("list")
def list_topics(as_json: JsonFlag = False) -> None:
    """Every topic the deployment needs, with partitions, cleanup policy and key."""
    from carbonledger.ops.admin import topic_map

    settings = load_settings()
    specs = topic_map(settings, load_registry(settings.partners_file))
    show_rows(
        [asdict(s) for s in specs],
        [f"{s.name:<48} {s.partitions:>3}  {s.cleanup_policy:<8} key={s.key}" for s in specs],
        ["name", "partitions", "cleanup_policy", "key", "producers", "consumers"],
        as_json,
    )


def kafka_access() -> None:
    """Create the partner and service Kafka users and their ACLs."""
    from carbonledger.ops.kafka_access import access_map, apply_access

    settings = load_settings()
    report = apply_access(settings, access_map(settings))
    print(
        f"{report.users} users, {report.acls} ACLs: "
        f"{report.created} created, {report.removed} removed"
    )


def kafka_tool(
    ctx: typer.Context,
    tool: Annotated[
        str, typer.Argument(help="topics, consumer-groups, get-offsets, log-dirs, ...")
    ],
) -> None:
    """Run one of Kafka's own admin tools against the stack, as its admin principal
    (e.g. `kafka-tool consumer-groups --describe --all-groups`); the rest goes to it."""
    from carbonledger.ops import kafka_tools

    if tool not in kafka_tools.TOOLS:
        fail(f"unknown tool {tool!r}; one of: {', '.join(sorted(kafka_tools.TOOLS))}", 2)
    finish(kafka_tools.run(load_settings(), tool, list(ctx.args)))


PANEL = "Kafka"


def register(app: typer.Typer) -> None:
    app.add_typer(topics_app, name="topics", rich_help_panel=PANEL)
    app.command("kafka-access", rich_help_panel=PANEL)(kafka_access)
    app.command(
        "kafka-tool",
        rich_help_panel=PANEL,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(kafka_tool)
