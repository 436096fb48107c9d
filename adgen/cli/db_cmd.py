"""``adgen db upgrade|downgrade|current``: schema migrations through Alembic."""

from __future__ import annotations

import typer

from adgen.db import migrate
from adgen.db.engine import make_engine
from adgen.settings import get_settings

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
