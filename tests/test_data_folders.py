"""Several data folders combined: extra observations beside the shipped data."""

from pathlib import Path

import pytest

from uncertainty.data import load_data
from uncertainty.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
HEADER = "region,metal,year,period,series,value,unit,basis,source,citation,confidence,note\n"
SOURCES = "source,publisher,title,url,year,licence\nmy-yearbook,Me,My typed yearbook,,2024,\n"


def extra_folder(tmp_path, rows: str, sources: str = SOURCES) -> Path:
    folder = tmp_path / "extra"
    (folder / "jp").mkdir(parents=True)
    (folder / "sources_mine.csv").write_text(sources)
    (folder / "jp" / "observations_mine.csv").write_text(HEADER + rows)
    return folder


def test_extra_rows_join_shipped_rows(tmp_path):
    base = load_data(ROOT / "data", "jp")
    folder = extra_folder(tmp_path, "JPN,Cu,1990,CY,refined_import,250,kt,metal_content,my-yearbook,table 3,primary,\n")
    combined = load_data([ROOT / "data", folder], "jp")
    assert len(combined.observations) == len(base.observations) + 1
    added = combined.observations[combined.observations["source"] == "my-yearbook"]
    assert added["tonnes"].tolist() == [250000.0]
    assert added["file"].iloc[0].endswith("observations_mine.csv")


def test_same_quantity_from_two_sources_is_kept_twice(tmp_path):
    # The shipped data have Cu 1984 refined imports from the USBM yearbook.
    folder = extra_folder(tmp_path, "JPN,Cu,1984,CY,refined_import,470,kt,metal_content,my-yearbook,table 3,primary,\n")
    combined = load_data([ROOT / "data", folder], "jp")
    rows = combined.observations.query("metal == 'Cu' and year == 1984 and series == 'refined_import'")
    assert len(rows) == 2
    assert sorted(rows["tonnes"]) == [463000.0, 470000.0]


def test_repeated_row_across_folders_is_rejected(tmp_path):
    row = "JPN,Cu,1990,CY,refined_import,250,kt,metal_content,my-yearbook,table 3,primary,\n"
    folder = extra_folder(tmp_path, row + row)
    with pytest.raises(InputError) as caught:
        load_data([ROOT / "data", folder], "jp")
    message = str(caught.value)
    assert "observations_mine.csv" in message
    assert "row 3" in message


def test_row_without_source_is_rejected_with_line(tmp_path):
    folder = extra_folder(tmp_path, "JPN,Cu,1990,CY,refined_import,250,kt,metal_content,,table 3,primary,\n")
    with pytest.raises(InputError) as caught:
        load_data([ROOT / "data", folder], "jp")
    problem = caught.value.problems[0]
    assert problem.file.endswith("observations_mine.csv")
    assert problem.location == "row 2"


@pytest.mark.parametrize("relative", ["jp/observations.csv", "world/world_production.csv"])
def test_missing_main_file_is_named(tmp_path, relative):
    import shutil

    folder = tmp_path / "data"
    shutil.copytree(ROOT / "data", folder)
    (folder / relative).unlink()
    with pytest.raises(InputError) as caught:
        load_data(folder, "jp")
    assert [problem.file for problem in caught.value.problems] == [str(folder / relative)]
