"""Running the migrations to a given point inside a test, for data-migration tests."""

from django.apps.registry import Apps
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate(target: tuple[str, str]) -> Apps:
    """Migrate the test database to `target` (app label, migration name) and return the
    historical app registry at that point (models as they were then)."""
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    executor.loader.build_graph()
    return executor.loader.project_state([target]).apps


def migrate_to_latest() -> None:
    """Apply every migration again, leaving the schema as every other test expects it."""
    MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
