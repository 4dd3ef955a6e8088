"""Sources: where messages come from, and the decoders that turn them into rows."""
