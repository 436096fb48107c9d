"""``adgen db upgrade|downgrade|current|grant-analyst``: schema migrations through Alembic,
and read-only logins for analysts."""

from __future__ import annotations

import re
from typing import Annotated

import sqlalchemy as sa
import typer

from adgen.db import migrate
from adgen.db.engine import make_engine
from adgen.errors import ConfigError, ValidationError
from adgen.settings import get_settings

#: The read-only role of migration 0002: SELECT on every table and view, nothing else.
ANALYST_ROLE = "adgen_analyst"
ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

app = typer.Typer(help="Database schema migrations (Alembic).", no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Migrate the database up to REVISION (default: head)."""
    url = get_settings().db_url
    make_engine(url).dispose()  # creates the SQLite folder when needed
    migrate.upgrade(url, revision)
    typer.echo(f"database at {revision}")


@app.command()
def downgrade(revision: str = typer.Argument("base", help="Target revision.")) -> None:
    """Migrate the database down to REVISION (default: base, an empty schema)."""
    migrate.downgrade(get_settings().db_url, revision)
    typer.echo(f"database at {revision}")


@app.command()
def current() -> None:
    """Print the revision the database is at."""
    engine = make_engine(get_settings().db_url, must_exist=True)
    typer.echo(migrate.current_revision(engine) or "not migrated")
    engine.dispose()


@app.command("grant-analyst")
def grant_analyst(
    name: Annotated[str, typer.Argument(help="Login name (lower case, digits, _).")],
    password: Annotated[
        str | None,
        typer.Option(help="Password of a new login (omit for peer / certificate auth)."),
    ] = None,
) -> None:
    """Give NAME a read-only PostgreSQL login: CREATE ROLE NAME LOGIN IN ROLE adgen_analyst
    (or GRANT adgen_analyst TO NAME when the role exists)."""
    if not ROLE_NAME.match(name):
        raise ValidationError(
            f"role name {name!r} must be lower-case letters, digits and _ (at most 63)"
        )
    url = get_settings().db_url
    if not url.startswith("postgresql"):
        raise ConfigError("analyst logins are PostgreSQL roles; ADGEN_DATABASE_URL is not one")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            exists = conn.scalar(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name})
            if exists:
                conn.execute(sa.text(f"GRANT {ANALYST_ROLE} TO {name}"))
                done = f"existing role {name} granted {ANALYST_ROLE}"
            else:
                secret = " PASSWORD :pw" if password else ""
                conn.execute(
                    sa.text(f"CREATE ROLE {name} LOGIN{secret} IN ROLE {ANALYST_ROLE}"),
                    {"pw": password} if password else {},
                )
                done = f"created login {name} in {ANALYST_ROLE}"
    finally:
        engine.dispose()
    typer.echo(f"{done} (read-only: SELECT on adgen's tables and views)")
