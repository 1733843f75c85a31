"""NumPy reference operators and the sparse matrix C: every configuration, exact."""
