"""Database adapter: typed models, engine and sessions, migrations."""
