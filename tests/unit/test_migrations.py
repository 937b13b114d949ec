"""The ledger's Alembic revisions and its connection URL, without a database."""

from __future__ import annotations

from alembic.script import ScriptDirectory
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from carbonledger.contracts.settings import Settings
from carbonledger.services.ledger.adapters import migrations


def test_each_sql_file_has_one_revision_and_they_chain_in_file_order() -> None:
    script = ScriptDirectory.from_config(migrations.alembic_config())
    chain = [(rev.revision, rev.down_revision) for rev in reversed(list(script.walk_revisions()))]
    numbers = [path.name[:4] for path in sorted(migrations.MIGRATIONS.glob("*.sql"))]

    assert numbers == ["0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009"]
    assert chain == list(zip(numbers, [None, *numbers[:-1]], strict=True))
    assert migrations.latest_version() == 9
    assert migrations.sql_file("0003").name == "0003_chains_periods_outbox.sql"


def test_the_url_carries_the_settings_connection_and_password_exactly() -> None:
    secret = "p@ss:/%?&=#"  # every character a URL must escape
    settings = Settings(pg_host="db.internal", pg_port=6543, pg_password=SecretStr(secret))

    url = migrations.sqlalchemy_url(settings.pg_conninfo + " sslmode=require")

    assert url.drivername == "postgresql+psycopg"
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "carbon",
        secret,
        "db.internal",
        6543,
        "carbonledger",
    )
    assert dict(url.query) == {"sslmode": "require"}
    assert secret not in str(url)  # rendered for logs, it hides the password
    assert make_url(url.render_as_string(hide_password=False)) == url
