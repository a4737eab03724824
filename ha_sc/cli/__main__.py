"""``python -m ha_sc.cli``: the same as the ``ha-sc`` command."""

from ha_sc.cli import main

main()
