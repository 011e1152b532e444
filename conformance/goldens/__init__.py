"""Golden sets: the format (packaged JSON Schema), the line-aware loader and ``conformance lint``."""
