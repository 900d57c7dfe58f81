"""Rollouts (§10): move a slice of the fleet to an image in batches, in the background."""
