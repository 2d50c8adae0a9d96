"""The pure-Python shape engine: exact arithmetic, the Plan, and inference over the graph."""
