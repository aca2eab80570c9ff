"""Item text templates."""

from __future__ import annotations

import pandas as pd
import pytest

from recllm.data.text import render_item_texts, template_fields
from recllm.errors import ConfigError

TEMPLATE = "Title: {title} | Genres: {genres} | Year: {year}"


def test_render_skips_empty_segments() -> None:
    items = pd.DataFrame(
        {
            "item_id": ["1", "2", "3"],
            "title": ["Heat", "Alien", ""],
            "genres": ["Crime", "", ""],
            "year": ["1995", "1979", ""],
        }
    )
    assert render_item_texts(items, TEMPLATE) == [
        "Title: Heat | Genres: Crime | Year: 1995",
        "Title: Alien | Year: 1979",
        "Item 3",
    ]


def test_template_errors_name_the_problem() -> None:
    items = pd.DataFrame({"item_id": ["1"], "title": ["Heat"]})
    with pytest.raises(ConfigError, match="brand"):
        render_item_texts(items, "Title: {title} | Brand: {brand}")
    with pytest.raises(ConfigError, match="malformed"):
        template_fields("Title: {title")
