"""The ``inv360`` command line."""
