# Intentionally (almost) empty: the conformance plugin arrives through its pytest11 entry point.
