"""The team store: sessions, decisions, events and packs in one PostgreSQL database.

Its driver (psycopg2) is imported only inside this package, and only when a PostgreSQL
store is used: with the default file store coachctl never imports a database driver.
"""
