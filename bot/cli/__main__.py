"""`python -m bot.cli`: the same as the `houqin` console script."""

import sys

from bot.cli import main

main()
sys.exit(0)
