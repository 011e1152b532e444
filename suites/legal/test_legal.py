"""Legal drafting and contract review: the candidate must keep answering, with the same legal terms.

Thin by design: the plugin parametrizes ``case`` from goldens/legal and replays baseline and candidate once per run;
``conformance.evaluate`` picks the checks suite.yaml asks for; these tests only record and assert.
"""

from conformance.standard_tests import (  # noqa: F401 — pytest collects the imported tests
    test_answered,
    test_gates,
    test_latency,
    test_load,
    test_terms,
)
