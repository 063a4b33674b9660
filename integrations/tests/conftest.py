"""The pipeline tests' fixtures (defined with their helpers in pipeline_fixtures.py). A test
module that defines a fixture of the same name (the webhook tests' `connection`, say) keeps
its own."""

from integrations.tests.pipeline_fixtures import (  # noqa: F401 - fixtures for the tests here
    calls,
    connection,
    executor,
    fast_client,
    pilot,
    seen,
)
