"""``python -m inventory360.cli``."""

from inventory360.cli.main import main

main()
