"""The paper's numbers and the rows and columns of its tables: ``Cell`` and the parsers.

A *cell* of a table is one (model, column) pair; a :class:`Cell` names the model: its
``base`` (fcn, cnn, st-fcn, st-cnn, st-cnn-multi, 2xst-fcn) and, for models with a
spatial transformer, its transform (aff, proj, tps, att). Columns are the distortions
of section 4.1 (R, RTS, P, E, TC), or ``addition`` for MNIST addition.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PAPER_TABLE1", "PAPER_ADDITION", "TABLE1_ROWS", "ADDITION_ROWS", "DISTORTION_LABEL",
           "MAIN_DISTORTIONS", "FIGURE_TRANSFORM", "Cell", "finished_pairs", "parse_cell", "parse_models",
           "parse_distortions"]

# Table 1 of Jaderberg et al. (NIPS 2015), test error in percent. The Proj / TPS rows are
# as we read them in the paper; TC is reported only for FCN, CNN and the affine ST models.
PAPER_TABLE1 = {
    "fcn": {"r": 2.1, "rts": 5.2, "p": 3.1, "e": 3.2, "tc": 13.2},
    "cnn": {"r": 1.2, "rts": 0.8, "p": 1.5, "e": 1.4, "tc": 3.5},
    "st-fcn-aff": {"r": 1.2, "rts": 0.8, "p": 1.5, "e": 2.7, "tc": 2.0},
    "st-fcn-proj": {"r": 1.3, "rts": 0.9, "p": 1.4, "e": 2.6},
    "st-fcn-tps": {"r": 1.1, "rts": 0.8, "p": 1.4, "e": 2.4},
    "st-cnn-aff": {"r": 0.7, "rts": 0.5, "p": 0.8, "e": 1.2, "tc": 1.7},
    "st-cnn-proj": {"r": 0.8, "rts": 0.6, "p": 0.8, "e": 1.3},
    "st-cnn-tps": {"r": 0.7, "rts": 0.5, "p": 0.8, "e": 1.1},
}
# MNIST addition (paper appendix). Quoted from memory and NOT verified against the paper;
# the paper's transformer model there is 2xST-CNN, not the 2xST-FCN built here.
PAPER_ADDITION = {"fcn": 47.7, "cnn": 14.7}

SHORT = {"aff": "affine", "proj": "projective", "tps": "tps", "att": "attention"}
LONG = {v: k for k, v in SHORT.items()}
LABEL = {"fcn": "FCN", "cnn": "CNN", "st-fcn": "ST-FCN", "st-cnn": "ST-CNN", "st-cnn-multi": "ST-CNN Multi",
         "2xst-fcn": "2xST-FCN"}
TRANSFORM_LABEL = {"aff": "Aff", "proj": "Proj", "tps": "TPS", "att": "Att"}

TABLE1_ROWS = ("fcn", "cnn", "st-fcn-aff", "st-fcn-proj", "st-fcn-tps", "st-cnn-aff", "st-cnn-proj", "st-cnn-tps")
ADDITION_ROWS = ("fcn", "cnn", "st-cnn-multi-aff", "2xst-fcn-aff")
DISTORTION_LABEL = {"r": "R", "rts": "RTS", "p": "P", "e": "E", "tc": "TC"}
MAIN_DISTORTIONS = ("r", "rts", "p", "e")
# the transform drawn in each distortion's figure (the one made for it)
FIGURE_TRANSFORM = {"r": "aff", "rts": "aff", "p": "proj", "e": "tps", "tc": "aff"}


@dataclass(frozen=True)
class Cell:
    """One row of a table: ``base`` model name and, for ST models, the transform."""

    base: str
    transform: str | None = None  # short name: aff, proj, tps, att

    @property
    def key(self) -> str:
        return self.base if self.transform is None else f"{self.base}-{self.transform}"

    @property
    def label(self) -> str:
        name = LABEL[self.base]
        return name if self.transform is None else f"{name} {TRANSFORM_LABEL[self.transform]}"

    @property
    def transform_name(self) -> str:
        return SHORT[self.transform or "aff"]

    @property
    def family(self) -> str | None:
        """``"fcn"`` or ``"cnn"``: the baseline an ST model should beat."""
        if self.base in ("st-fcn", "2xst-fcn"):
            return "fcn"
        if self.base in ("st-cnn", "st-cnn-multi"):
            return "cnn"
        return None

    @property
    def group(self) -> str:
        """``"conv"`` (CNN, ST-CNN, ST-CNN Multi) or ``"fc"`` (FCN, ST-FCN, 2xST-FCN): the
        family whose members are compared with each other and share an epoch count."""
        return "conv" if self.base in ("cnn", "st-cnn", "st-cnn-multi") else "fc"


def finished_pairs(results: dict, cells: list[Cell], columns: list[str]):
    """The comparisons the paper makes, where both cells finished: for each column and
    each ST model, ``(column, cell, its metrics, its baseline's metrics)``.

    ``results[(key, column)]`` is a cell's metrics dict; a cell that is missing, or whose
    ``status`` is not ``"done"``, takes no part (nor does a baseline row itself)."""
    for column in columns:
        for cell in cells:
            mine = results.get((cell.key, column))
            base = results.get((cell.family, column)) if cell.family else None
            if mine and base and mine.get("status") == "done" and base.get("status") == "done":
                yield column, cell, mine, base


def parse_cell(text: str) -> Cell:
    """``fcn``, ``cnn``, ``st-fcn-aff``, ``st-cnn-tps``, ``st-cnn-multi-proj``, ``2xst-fcn-aff``..."""
    key = text.strip().lower().replace("_", "-")
    if key in ("fcn", "cnn"):
        return Cell(key)
    for base in ("st-cnn-multi", "2xst-fcn", "st-fcn", "st-cnn"):
        if key == base:
            return Cell(base, "aff")
        if key.startswith(base + "-"):
            t = key[len(base) + 1:]
            t = LONG.get(t, t)
            if t in SHORT:
                return Cell(base, t)
    raise ValueError(f"unknown model {text!r}: use fcn, cnn, or st-fcn / st-cnn / st-cnn-multi / 2xst-fcn "
                     f"followed by -aff, -att, -proj or -tps (e.g. st-cnn-tps)")


def _names(text: str | None, default, what: str) -> list[str]:
    """The comma-separated names of ``text`` (``default`` when None); none at all is an error."""
    if text is None:
        return list(default)
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise ValueError(f"no {what} in {text!r}: give a comma-separated list, or leave the option out")
    return names


def parse_models(text: str | None, default=TABLE1_ROWS) -> list[Cell]:
    """``"fcn,st-cnn-tps"`` -> cells; None gives ``default``."""
    return [parse_cell(t) for t in _names(text, default, "models")]


def parse_distortions(text: str | None, default=MAIN_DISTORTIONS) -> list[str]:
    """``"r, rts"`` -> ``["r", "rts"]`` (lower case, each once); None gives ``default``."""
    names = [t.lower() for t in _names(text, default, "distortions")]
    for d in names:
        if d not in DISTORTION_LABEL:
            raise ValueError(f"unknown distortion {d!r}: choose from {', '.join(DISTORTION_LABEL)}")
    return list(dict.fromkeys(names))
