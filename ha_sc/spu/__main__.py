"""``python -m ha_sc.spu``: the same as ``ha-sc spu run``."""

from ha_sc.cli.spu_run import main

main()
