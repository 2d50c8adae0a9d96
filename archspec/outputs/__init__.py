"""Outputs: reports, diagrams, the JSON Schema, export and prediction (from a Plan or a run)."""
