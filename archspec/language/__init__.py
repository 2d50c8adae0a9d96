"""The spec language: located loading, expressions, graph expansion, `extends:` and the models."""
