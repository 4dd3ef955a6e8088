"""The engine: incremental, vectorised maintenance of the SPEC §2 snapshot."""
