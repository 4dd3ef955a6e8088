"""HTTP API and dashboard over the serving projection (``create_app``) and the runtimes that host it."""
