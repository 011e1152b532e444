"""Load stages: replay a suite's golden requests under Locust and gate the candidate's behaviour under load.

Never imported by the pytest process beyond the pure modules: :mod:`~conformance.load.runner` (run_load,
compare_load, add_quality), :mod:`~conformance.load.quality`, :mod:`~conformance.load.stats`,
:mod:`~conformance.load.compare`, :mod:`~conformance.load.plan`, :mod:`~conformance.load.sse` and
:mod:`~conformance.load.vllm_metrics` import neither locust nor gevent; :mod:`~conformance.load.locustfile` and
:mod:`~conformance.load.shapes` run only inside the Locust subprocess. This package file stays empty on purpose, so
the Locust process imports only what it uses.
"""
