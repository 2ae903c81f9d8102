"""samkit's version: the one place it is written (the wheel's metadata reads it too)."""

__version__ = "0.1.0"
