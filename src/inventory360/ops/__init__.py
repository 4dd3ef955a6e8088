"""Inventory 360 package ops helpers: metrics."""
