"""A process that spends a token's request budget: `python -m integrations.tests.budget_worker
TOKEN` sends `GET /users/me` until the shared budget would make it wait more than a second,
then prints how many it sent. Settings come from the environment (tests use procs.child_env)."""

import sys

import django


def main() -> None:
    django.setup()
    from integrations.asana.client import AsanaClient
    from integrations.asana.errors import AsanaRateLimited

    sent = 0
    with AsanaClient(sys.argv[1], max_retries=0, max_budget_wait=1.0) as client:
        while True:
            try:
                client.me()
            except AsanaRateLimited:
                break
            sent += 1
    print(sent)


if __name__ == "__main__":
    main()
