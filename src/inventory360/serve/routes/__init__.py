"""One router per resource: inventory, alerts, stream, health (and the dashboard assets)."""
