"""The task pipeline: poll, claim and lease, convert, execute, report."""
