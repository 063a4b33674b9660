"""`manage.py syncgoals [--employee EMAIL] [--workspace GID]`: pull goals from Asana now."""

from django.core.management.base import CommandError, CommandParser

from goals.sync import GoalsError, SyncResult, sync_goals
from integrations.models import AsanaConnection
from pilotsite.untrusted import PrintableOutputCommand


class Command(PrintableOutputCommand):
    help = "Sync mapped employees' Asana goals and key results (every connected workspace)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--employee", metavar="EMAIL", help="sync only this employee")
        parser.add_argument("--workspace", metavar="GID", help="sync only this workspace")

    def handle(self, *args, employee: str | None, workspace: str | None, **options) -> None:
        connections = AsanaConnection.objects.all()
        if workspace:
            connections = connections.filter(workspace_gid=workspace)
        if not connections.exists():
            raise CommandError(
                "No Asana workspace is connected"
                + (f" with GID {workspace}" if workspace else "")
                + ": connect one on the Integrations tab first."
            )
        if employee:
            # Only the workspaces the employee is mapped in: elsewhere there is nothing of
            # theirs to sync, and that is not a failure.
            connections = connections.filter(
                mappings__employee__email__iexact=employee.strip()
            ).distinct()
            if not connections.exists():
                raise CommandError(
                    f"No employee with email {employee} is mapped to an Asana user in "
                    + (f"workspace {workspace}." if workspace else "any connected workspace.")
                )
        failures = []
        for connection in connections:
            self.stdout.write(f"{connection}:")
            try:
                result = sync_goals(connection, employee_email=employee, source="command")
            except GoalsError as exc:
                failures.append(str(exc))
                self.stderr.write(f"  error: {exc}")
                continue
            self._report(result)
            if not result.ok:
                failures.append(result.error)
        if failures:
            raise CommandError("; ".join(failures))

    def _report(self, result: SyncResult) -> None:
        sync = result.sync
        if not result.ok:
            self.stderr.write(f"  sync failed, stored goals left unchanged: {sync.error}")
            return
        for e in result.employees:
            truncated = f"yes (first {e.kept} of {e.owned})" if e.truncated else "no"
            self.stdout.write(
                f"  {e.email}: goals kept {e.kept}, key results {e.key_results}, "
                f"skipped over the cap {e.owned - e.kept}, truncated {truncated}, "
                f"removed {e.removed}"
            )
        self.stdout.write(
            f"  skipped {sync.skipped} goals of nobody mapped ({sync.skipped_unowned} without "
            f"owner, {sync.skipped_unmapped} owned by unmapped users); "
            f"{sync.requests} Asana requests"
        )
