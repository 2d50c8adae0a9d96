"""Training: run directories, the loop, checkpoints, distributed launch, evaluation.

Modules import torch themselves; importing this package does not.
"""
