"""Alembic migrations, shipped inside the package so an installed takeback can migrate its own database
(``takeback.store.db.upgrade``)."""
