"""Fixed decimals for the app's tables.

A table cell shows a float as it was rounded, so 0.70 reads "0.7" and 30.80 "30.8" beside
"30.93": the columns stop lining up and a reader cannot tell the precision. ``fixed`` keeps
the values (the API and the CSV exports see the numbers) and gives every float cell a display
text with a fixed number of decimals; gradio's Dataframe shows a pandas Styler's display
values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler


def _cell_text(spec: str):
    def text(value) -> str:
        if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
            return ""
        if isinstance(value, float | np.floating):
            return format(float(value), spec)
        return str(value)
    return text


def fixed(frame: pd.DataFrame, formats: Mapping[str, str] | None = None, default: str = ".2f") -> Styler:
    """``frame`` as a Styler whose float cells read with fixed decimals: the format spec in
    ``formats`` for that column, else ``default``. Missing values read as blank; text and
    integer cells (a partial mean such as "31.83 (15/24)", an image name) are left as they are."""
    formats = formats or {}
    return frame.style.format({c: _cell_text(formats.get(c, default)) for c in frame.columns})
