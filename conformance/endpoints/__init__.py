"""Endpoints: configuration, the OpenAI-compatible client (the product path), preflight and recordings."""
