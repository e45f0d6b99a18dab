"""``python -m minstn ...`` runs the command line (see :mod:`minstn.experiments.cli`)."""
import sys

from .experiments.cli import main

sys.exit(main())
