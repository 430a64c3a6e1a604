"""`python -m usgan.data check ...`: the data check (usgan/data/check.py)."""
import sys

from .check import main

sys.exit(main())
