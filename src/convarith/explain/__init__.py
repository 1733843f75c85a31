"""Derivations with the actual numbers, and the tour that answers the motivating question."""
