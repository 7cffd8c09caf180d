"""Network definitions (torch modules only: no weights, no I/O)."""
