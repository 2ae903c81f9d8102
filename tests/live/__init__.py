"""Tests of ``samkit.live``, one file per module."""
