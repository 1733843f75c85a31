"""Pictures: a frame model derived from the geometry, and writers that turn frames into files."""
