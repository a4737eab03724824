"""The ``ha-sc`` command line."""

from ha_sc.cli.main import main

__all__ = ["main"]
