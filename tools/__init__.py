"""The repository's scripts, run from its root as ``python -m tools.<name>``."""
