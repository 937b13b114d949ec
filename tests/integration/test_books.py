"""The three books against real PostgreSQL and Kafka: reversals, roll-ups, hash
chains and their verification, the outbox, and a ledger writer killed repeatedly."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from carbonledger.contracts import topics
from carbonledger.contracts.records import Decision
from carbonledger.contracts.settings import Settings
from carbonledger.demo.sample import subject_of
from carbonledger.ops import stack
from carbonledger.runtime.producers import producer
from carbonledger.services.ledger.adapters import audit
from carbonledger.services.ledger.adapters.books import Books
from tests.factories import reversal
from tests.integration.helpers import books_balanced, cli, personal_balances, read_api, scan
from tests.integration.test_ledger import decisions

pytestmark = pytest.mark.integration


def in_region(batch: list[Decision], region: str) -> list[Decision]:
    return [
        d.model_copy(update={"claim": d.claim.model_copy(update={"region": region})}) for d in batch
    ]


def government(base: str, region: str) -> dict[str, Any]:
    response = read_api(f"{base}/v1/ledgers/government/{region}")
    return response.json() if response.status_code == 200 else {"total": {"mg": 0}}


def test_reversals_net_to_zero_in_every_book(db: psycopg.Connection) -> None:
    books = Books(db)
    batch = decisions("reverse", 3)
    books.apply(batch, f"test-{uuid.uuid4()}", [])
    books.apply([reversal(d) for d in batch], f"test-{uuid.uuid4()}", [])
    assert all(v == 0 for v in personal_balances(db, {d.claim.subject for d in batch}).values())
    rows = db.execute(
        "SELECT book, sum(amount_mg), count(*) FROM postings WHERE claim_id = ANY(%s)"
        " GROUP BY book",
        ([d.claim.claim_id for d in batch],),
    ).fetchall()
    assert sorted(rows) == [("enterprise", 0, 6), ("government", 0, 6), ("personal", 0, 6)]
    assert books_balanced(db)


def test_a_district_rolls_up_to_its_city_province_and_nation_and_nowhere_else(
    db: psycopg.Connection, running_stack: stack.Processes
) -> None:
    base = f"http://127.0.0.1:{running_stack.port('ledger-api')}"
    watched = ("420111", "420100", "420000", "000000", "420102", "440000", "440305")
    before = {r: government(base, r)["total"]["mg"] for r in watched}
    batch = in_region(decisions("rollup", 4), "420111")
    Books(db).apply(batch, f"test-{uuid.uuid4()}", [])
    after = {r: government(base, r)["total"]["mg"] for r in watched}
    moved = {r: after[r] - before[r] for r in watched}
    added = sum(d.amount_mg for d in batch)
    assert moved == {
        "420111": added, "420100": added, "420000": added, "000000": added,
        "420102": 0, "440000": 0, "440305": 0,
    }  # fmt: skip
    province = government(base, "420000")
    assert province["level"] == "province" and province["name"] == "湖北省"
    assert {c["code"]: c["total"]["mg"] for c in province["children"]}["420100"] == after["420100"]
    enterprise = read_api(f"{base}/v1/ledgers/enterprise/shenzhen-metro").json()
    assert enterprise["by_region"]["420111"]["mg"] >= added
    assert enterprise["by_province"]["420000"]["mg"] >= added
    assert read_api(f"{base}/v1/ledgers/government/999999").status_code == 404


def verify_cli(*args: str) -> tuple[int, dict[str, Any]]:
    done = cli(*args)
    return done.returncode, json.loads(done.stdout)


def test_verify_passes_on_a_clean_ledger_and_names_an_altered_posting(
    db: psycopg.Connection, running_stack: stack.Processes
) -> None:
    batch = in_region(decisions("tamper", 3), "440303")
    Books(db).apply(batch, f"test-{uuid.uuid4()}", [])
    code, report = verify_cli("verify")
    assert code == 0 and report["ok"], report
    target = db.execute(
        "SELECT posting_id, account, amount_mg FROM postings WHERE decision_id = %s"
        " AND book = 'personal'",
        (batch[1].decision_id,),
    ).fetchone()
    assert target is not None
    posting_id, account, amount = target
    _tamper(db, posting_id, amount + 1000)
    try:
        code, report = verify_cli("verify")
        assert code == 1
        # (its running balance and its hash no longer agree with its content)
        assert {(b["account"], b["posting_id"]) for b in report["breaks"]} == {
            (account, str(posting_id))
        }
        code, one = verify_cli("verify", "--account", f"personal:{account}")
        assert code == 1 and one["breaks"][0]["posting_id"] == str(posting_id)
    finally:
        _tamper(db, posting_id, amount)
    assert verify_cli("verify")[0] == 0


def _tamper(db: psycopg.Connection, posting_id: Any, amount: int) -> None:
    """What an attacker with database access would do: bypass the append-only trigger."""
    with db.transaction():
        db.execute("ALTER TABLE postings DISABLE TRIGGER postings_append_only")
        db.execute("UPDATE postings SET amount_mg = %s WHERE posting_id = %s", (amount, posting_id))
        db.execute("ALTER TABLE postings ENABLE TRIGGER postings_append_only")


def test_export_writes_a_package_a_verifier_checks_offline(
    db: psycopg.Connection, tmp_path: Path
) -> None:
    batch = in_region(decisions("export", 5), "420106")
    Books(db).apply(batch, f"test-{uuid.uuid4()}", [])
    folder = tmp_path / "package"
    code, summary = verify_cli(
        "export", "--region", "420100", "--from", "2026-10-01", "--to", "2026-10-31",
        "--out", str(folder),
    )  # fmt: skip
    assert code == 0 and summary["by_district_mg"]["420106"] >= sum(d.amount_mg for d in batch)
    assert set(summary["by_district_mg"]) <= {
        c for c in summary["by_district_mg"] if c[:4] == "4201"
    }
    assert list((folder / "methodologies").glob("shenzhen-public-transport@1.yaml"))
    code, report = verify_cli("verify-export", str(folder))
    assert code == 0 and report["ok"], report
    postings = folder / "postings.jsonl"
    lines = postings.read_text().splitlines()
    altered = json.loads(lines[0]) | {"amount_mg": 1}
    postings.write_text("\n".join([json.dumps(altered), *lines[1:]]) + "\n")
    code, report = verify_cli("verify-export", str(folder))
    assert code == 1 and report["breaks"] and "postings.jsonl: file changed" in report["problems"]


def test_every_posting_is_published_on_ledger_postings_with_its_running_balance(
    settings: Settings, db: psycopg.Connection, running_stack: stack.Processes
) -> None:
    batch = decisions("outbox", 3)
    Books(db).apply(batch, f"test-{uuid.uuid4()}", [])
    wanted = {
        str(p): (b, a, n, bal)
        for p, b, a, n, bal in db.execute(
            "SELECT posting_id, book, account, chain_index, balance_mg FROM postings"
            " WHERE decision_id = ANY(%s)",
            ([d.decision_id for d in batch],),
        ).fetchall()
    }
    seen: dict[str, Any] = {}

    def all_seen() -> bool:
        return wanted.keys() <= seen.keys()

    for record in scan(settings, [topics.POSTINGS], until=all_seen, timeout=60):
        body = json.loads(record.value)
        if body["posting_id"] in wanted:
            seen[body["posting_id"]] = body
            assert record.key.decode() == f"{body['book']}:{body['account']}"
    assert wanted.keys() <= seen.keys()
    for posting_id, (book, account, index, balance) in wanted.items():
        body = seen[posting_id]
        assert (body["book"], body["account"], body["chain_index"], body["balance_mg"]) == (
            book, account, index, balance,
        )  # fmt: skip


def many_decisions(tag: str, count: int, people: int) -> list[Decision]:
    """Credits (and some reversals of them) for many people, cheaply: one quantified
    template, new ids, subjects and amounts."""
    (template,) = decisions(f"{tag}-template", 1)
    made = []
    for n in range(count):
        subject = subject_of(f"+86-{tag}-{n % people}")
        claim = template.claim.model_copy(
            update={"subject": subject, "claim_id": uuid.uuid5(uuid.NAMESPACE_OID, f"{tag}-{n}")}
        )
        d = template.model_copy(
            update={
                "decision_id": uuid.uuid5(uuid.NAMESPACE_URL, f"{tag}-{n}"),
                "claim": claim,
                "amount_mg": 1000 + n % 997,
            }
        )
        made += [d, reversal(d)] if n % 10 == 0 else [d]
    return made


def test_ledger_writer_killed_repeatedly_during_20000_decisions_posts_each_once(
    settings: Settings, db: psycopg.Connection, running_stack: stack.Processes
) -> None:
    batch = many_decisions("kill-ledger", 18_200, people=500)
    assert len(batch) >= 20_000
    want: dict[str, int] = {}
    for d in batch:
        want[d.claim.subject] = want.get(d.claim.subject, 0) + d.amount_mg
    send = producer(settings)
    for d in batch:
        send.send(topics.DECISIONS, key=d.claim.subject.encode(), value=d.to_bytes())
    send.flush(timeout=120)
    send.close()
    for _ in range(4):
        time.sleep(1.5)
        running_stack.kill("ledger-writer")
        running_stack.start("ledger-writer")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and personal_balances(db, set(want)) != want:
        time.sleep(1)
    assert personal_balances(db, set(want)) == want
    postings = db.execute(
        "SELECT count(*) FROM postings WHERE decision_id = ANY(%s)",
        ([d.decision_id for d in batch],),
    ).fetchone()
    assert postings == (3 * len(batch),)
    assert books_balanced(db)
    report = audit.verify(db)
    assert report.ok, report.as_json()


def test_an_employer_account_sums_linked_employees_postings_since_linking(
    db: psycopg.Connection, running_stack: stack.Processes
) -> None:
    base = f"http://127.0.0.1:{running_stack.port('ledger-api')}"
    books = Books(db)
    before_link = decisions("employee-before", 3)
    books.apply(before_link, f"test-{uuid.uuid4()}", [])
    people = sorted({d.claim.subject for d in before_link})
    employer = f"acme-{uuid.uuid4().hex[:8]}"
    assert read_api(f"{base}/v1/ledgers/employer/{employer}").status_code == 404
    assert cli("employer", "link", employer, *people).stdout.startswith("linked 3")
    enterprise_total = books.totals()["enterprise"]
    after_link = [
        d.model_copy(
            update={
                "decision_id": uuid.uuid5(d.decision_id, "after-link"),
                "claim": d.claim.model_copy(update={"claim_id": uuid.uuid5(d.claim.claim_id, "x")}),
            }
        )
        for d in before_link[:2]
    ]
    books.apply(after_link, f"test-{uuid.uuid4()}", [])
    body = read_api(f"{base}/v1/ledgers/employer/{employer}").json()
    assert body["members"] == 3
    assert body["total"]["mg"] == sum(d.amount_mg for d in after_link)
    assert body["by_month"]["2026-10"]["mg"] == body["total"]["mg"]
    # A view of the personal book: the enterprise book moves only by the partner's postings.
    assert books.totals()["enterprise"] - enterprise_total == sum(d.amount_mg for d in after_link)
