"""``minstn reproduce``: the paper's distorted-MNIST tables (Table 1, MNIST addition), one command.

Read it in this order: ``paper.py`` (the paper's numbers, the rows and columns:
``Cell``), ``budgets.py`` (how long each cell trains), ``cells.py`` (train one cell or
read it back), ``children.py`` (``--jobs N``: cells in child processes), ``report.py``
(table, ordering check, JSON, figures), ``curves.py`` (the learning curves) and
``command.py`` (the two runs and the command line); ``seeds.py`` averages finished runs
of several seeds.
"""

from .budgets import BUDGETS, Budget, Overrides, cell_cost, cell_settings
from .cells import load_cell_model, run_cell, stored_cell, train_cell
from .children import SINGLE_THREAD_ENV
from .command import HELP, add_reproduce_parser, run_addition, run_reproduce, run_table1
from .paper import (ADDITION_ROWS, DISTORTION_LABEL, MAIN_DISTORTIONS, PAPER_ADDITION, PAPER_TABLE1, TABLE1_ROWS,
                    Cell, parse_cell, parse_distortions, parse_models)
from .report import markdown_table, ordering_violations

__all__ = ["BUDGETS", "Budget", "Overrides", "cell_cost", "cell_settings", "load_cell_model", "run_cell",
           "stored_cell", "train_cell", "SINGLE_THREAD_ENV", "HELP", "add_reproduce_parser", "run_addition",
           "run_reproduce", "run_table1", "ADDITION_ROWS", "DISTORTION_LABEL", "MAIN_DISTORTIONS",
           "PAPER_ADDITION", "PAPER_TABLE1", "TABLE1_ROWS", "Cell", "parse_cell", "parse_distortions",
           "parse_models", "markdown_table", "ordering_violations"]
