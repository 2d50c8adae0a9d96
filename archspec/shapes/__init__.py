"""The pure-Python shape engine: exact arithmetic, the Plan, and inference over the graph."""

# The range a symbolic input size is searched over where no bounds are given
# (shapes.symbolic); here, so that `check --help` can show it without importing that engine.
SIZE_MINIMUM = 1
SIZE_MAXIMUM = 65536
