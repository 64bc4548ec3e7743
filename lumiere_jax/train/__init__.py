"""Training: optimiser, state, the jitted step, checkpoints and the loop."""
