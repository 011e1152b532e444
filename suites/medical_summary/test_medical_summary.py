"""Suite `medical_summary` — see suite.yaml for what it gates. Thin: checks come from ``conformance.evaluate``."""

from conformance.standard_tests import (  # noqa: F401 — pytest collects the imported tests
    test_answered,
    test_gates,
    test_schema,
)
