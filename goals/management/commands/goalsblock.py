"""`manage.py goalsblock EMAIL`: print the [GOALS] block of an employee's review prompt."""

from django.core.management.base import CommandError, CommandParser

from goals.block import goals_block
from integrations.models import Employee
from pilotsite.untrusted import PrintableOutputCommand


class Command(PrintableOutputCommand):
    help = "Print an employee's [GOALS] review block from the synced goals."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")

    def handle(self, *args, email: str, **options) -> None:
        employee = Employee.objects.filter(email__iexact=email.strip()).first()
        if employee is None:
            raise CommandError(f"No employee with email {email}.")
        self.stdout.write(goals_block(employee))
