"""Sinks: where committed results go (lake, projection, alerts, dead letters)."""
