"""``python -m minstn ...`` runs the command line (see :mod:`minstn.cli`)."""
import sys

from .cli import main

sys.exit(main())
