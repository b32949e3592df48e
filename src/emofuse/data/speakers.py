"""Speaker ids and genders as datasets write them: natural order of ids, one spelling of genders."""

from __future__ import annotations

import re

import numpy as np


def natural_key(speaker) -> tuple:
    """Numbers inside ids compare as numbers: "spk2" < "spk10", and 2 < 10 for integer ids."""
    if isinstance(speaker, (int, np.integer)):
        return ((0, int(speaker), ""),)
    return tuple((0, int(part), "") if part.isdecimal() else (1, 0, part) for part in re.split(r"(\d+)", str(speaker)) if part)


def normalise_gender(value) -> str:
    """'M', 'male', 'Man' -> male; 'F', 'female', 'Woman' -> female; anything else as written (lower case)."""
    text = str(value).strip().lower()
    if text in ("m", "male", "man", "masculine"):
        return "male"
    if text in ("f", "female", "woman", "feminine"):
        return "female"
    return text
