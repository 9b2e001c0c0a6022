"""The status table laid out without rich is exactly what rich prints, or not used at all."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mirror.catalog import status

COLUMNS = len(status._COLUMNS)
TYPICAL = ["COLL-A", "5", "2", "1", "1", "1", "1", "3.9 KiB", "4", "2024-06-01 08:30 UTC",
           "2024-05-31", "2024-06-02 10:00 UTC, 3 changed"]

#: cell text: mostly plain, sometimes markup, emoji codes, wide or control characters
cell = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30),
    st.sampled_from(["[bold]x[/bold]", ":smile:", "a:b:c", "\\[x]", "日本語", "é", "\t",
                     "x" * 90, "2024-06-01 08:30 UTC (failed)", "never", "-", ""]),
)


def test_the_usual_table_is_laid_out_without_rich() -> None:
    cells = [TYPICAL, ["COLL-B", "0", "0", "0", "0", "0", "0", "0 B", "0", "never", "-",
                       "never"]]
    lines = status.plain_table(cells)
    assert lines is not None and lines == status.rich_table(cells)
    assert lines[0].startswith("collection  series  done")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(cell, min_size=COLUMNS, max_size=COLUMNS), min_size=1, max_size=4))
def test_plain_layout_equals_rich_whenever_it_is_used(cells: list[list[str]]) -> None:
    lines = status.plain_table(cells)
    if lines is not None:
        assert lines == status.rich_table(cells)


def test_markup_wide_text_and_overflow_go_to_rich() -> None:
    for odd in ("[bold]COLL[/bold]", "日本語", "x" * 150, "a:b:c"):
        assert status.plain_table([[odd, *TYPICAL[1:]]]) is None
