"""Pedigree scores of sources: the mapping to a sd, the shipped score file and pedigree mode."""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
from collections import namedtuple
from pathlib import Path

import pytest

from uncertainty import quality
from uncertainty.data import load_data
from uncertainty.errors import InputError
from uncertainty.quality import (
    BASIC_SIGMA,
    INDICATORS,
    QUALITY_FILE,
    anchor_sigma,
    indicator_cv,
    load_quality_folders,
    load_source_quality,
    pedigree_cv,
    pedigree_sigma,
)
from uncertainty.simulate import _anchor_key, prepare_inputs
from uncertainty.spec import ShareFlow, load_models

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "data"
QUALITY_PATH = DATA_DIR / QUALITY_FILE

Row = namedtuple("Row", "source confidence period")


def scores_of(reliability, completeness, temporal, geographical, technological) -> dict[str, int]:
    return dict(zip(INDICATORS, (reliability, completeness, temporal, geographical, technological)))


def with_method(boundary, method: str):
    return dataclasses.replace(boundary, reporting_error=dataclasses.replace(boundary.reporting_error, method=method))


@pytest.fixture(scope="module")
def jp_data():
    return load_data(DATA_DIR, "jp")


@pytest.fixture(scope="module")
def jp_models():
    return load_models(ROOT / "models" / "jp")


@pytest.fixture(scope="module")
def shipped_quality():
    return load_source_quality(QUALITY_PATH)


# --- mapping from scores to a sd ---------------------------------------------


def test_indicator_cv_reliability_four():
    # Factor 1.20: sd = ln(1.2) / 2 = 0.0911607784, CV = sqrt(exp(sd^2) - 1).
    assert indicator_cv("reliability", 4) == pytest.approx(0.0913504998, rel=1e-9)


def test_indicator_cv_score_one_is_zero():
    for indicator in INDICATORS:
        assert indicator_cv(indicator, 1) == 0.0


def test_pedigree_sigma_hand_computed():
    # sd^2 = 0.02^2 + (ln(1.2) / 2)^2 + (ln(1.05) / 2)^2
    #      = 0.0004 + 0.0083102875 + 0.0005951200 = 0.0093054075
    scores = scores_of(4, 1, 1, 1, 2)
    assert pedigree_sigma(scores) == pytest.approx(0.0964645404, rel=1e-9)
    assert pedigree_cv(scores) == pytest.approx(0.0966893865, rel=1e-9)


def test_pedigree_sigma_all_ones_is_basic():
    assert pedigree_sigma(scores_of(1, 1, 1, 1, 1)) == pytest.approx(BASIC_SIGMA, rel=1e-12)


def test_pedigree_sigma_all_fives():
    # Factors 1.5, 1.2, 1.5, 1.1 and 2.0 with the basic 0.02, combined in quadrature.
    assert pedigree_sigma(scores_of(5, 5, 5, 5, 5)) == pytest.approx(0.4618392854, rel=1e-9)


def test_cv_and_sigma_round_trip():
    cv = pedigree_cv(scores_of(3, 2, 1, 2, 3))
    assert quality.cv_to_sigma(cv) == pytest.approx(pedigree_sigma(scores_of(3, 2, 1, 2, 3)), rel=1e-12)
    assert quality.sigma_to_cv(quality.cv_to_sigma(0.3)) == pytest.approx(0.3, rel=1e-12)


def test_pedigree_sigma_grows_with_each_score():
    for indicator in INDICATORS:
        sigmas = [pedigree_sigma({**scores_of(1, 1, 1, 1, 1), indicator: score}) for score in range(1, 6)]
        assert sigmas == sorted(sigmas), indicator
        assert sigmas[-1] > sigmas[0], indicator


@pytest.mark.parametrize("score", [0, 6])
def test_indicator_cv_rejects_score_out_of_range(score):
    with pytest.raises(ValueError, match="expected a whole number from 1 to 5"):
        indicator_cv("completeness", score)


def test_pedigree_cv_rejects_missing_indicator():
    scores = scores_of(1, 1, 1, 1, 1)
    del scores["temporal"]
    with pytest.raises(ValueError, match="temporal"):
        pedigree_cv(scores)


# --- the shipped score file ------------------------------------------------------


def test_shipped_file_loads(shipped_quality):
    assert shipped_quality
    for source, entry in shipped_quality.items():
        assert entry.source == source
        assert entry.rationale, source
        assert 0.0 < entry.sigma < 0.5, source


@pytest.mark.parametrize("boundary", ["jp", "us"])
def test_every_observation_source_scored(boundary, shipped_quality):
    data = load_data(DATA_DIR, boundary)
    used = set(data.observations["source"]) | set(data.world["source"])
    unscored = sorted(used - set(shipped_quality))
    assert unscored == []


def test_every_scored_source_listed(shipped_quality, jp_data):
    listed = set(jp_data.sources["source"])
    assert sorted(set(shipped_quality) - listed) == []


# --- invalid score files -----------------------------------------------------------


def write_bad_copy(tmp_path: Path, line: int, column: str, text: str) -> Path:
    """Copy the shipped score file with one cell replaced; ``line`` counts the header as 1."""
    lines = QUALITY_PATH.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    cells = lines[line - 1].split(",", len(header) - 1)
    cells[header.index(column)] = text
    lines[line - 1] = ",".join(cells)
    path = tmp_path / QUALITY_FILE
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("text", ["0", "6", "high", "2.5", "", "-1"])
def test_invalid_score_names_file_and_row(tmp_path, text):
    path = write_bad_copy(tmp_path, line=5, column="completeness", text=text)
    with pytest.raises(InputError) as caught:
        load_source_quality(path)
    message = str(caught.value)
    assert str(path) in message
    assert "row 5" in message
    assert "'completeness'" in message
    assert len(caught.value.problems) == 1


def test_every_invalid_row_reported(tmp_path):
    path = write_bad_copy(tmp_path, line=3, column="reliability", text="0")
    lines = path.read_text(encoding="utf-8").splitlines()
    cells = lines[7].split(",", 6)
    cells[5] = "9"
    lines[7] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_source_quality(path)
    locations = [problem.location for problem in caught.value.problems]
    assert locations == ["row 3, column 'reliability'", "row 8, column 'technological'"]


def test_repeated_source_rejected(tmp_path):
    lines = QUALITY_PATH.read_text(encoding="utf-8").splitlines()
    path = tmp_path / QUALITY_FILE
    path.write_text("\n".join([*lines, lines[1]]) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=f"row {len(lines) + 1}.*also on line 2"):
        load_source_quality(path)


def test_empty_rationale_rejected(tmp_path):
    path = write_bad_copy(tmp_path, line=4, column="rationale", text="")
    with pytest.raises(InputError, match="row 4, column 'rationale'"):
        load_source_quality(path)


def test_missing_column_rejected(tmp_path):
    path = tmp_path / QUALITY_FILE
    path.write_text("source,reliability,completeness,temporal,geographical,rationale\nx,1,1,1,1,r\n", encoding="utf-8")
    with pytest.raises(InputError, match="technological"):
        load_source_quality(path)


def test_source_scored_in_two_folders_rejected(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        folder.mkdir()
        shutil.copy(QUALITY_PATH, folder / QUALITY_FILE)
    with pytest.raises(InputError, match="scored in one data folder only"):
        load_quality_folders([first, second])


def test_invalid_file_stops_pedigree_run(tmp_path, jp_models):
    data_dir = tmp_path / "data"
    shutil.copytree(DATA_DIR, data_dir)
    write_bad_copy(data_dir, line=2, column="temporal", text="6")
    data = load_data(data_dir, "jp")
    boundary = with_method(jp_models.boundary, "pedigree")
    with pytest.raises(InputError, match="row 2, column 'temporal'"):
        prepare_inputs(jp_models.metals[0], data, boundary)


# --- pedigree mode in prepare_inputs --------------------------------------------


def anchor_rows(model, data, boundary):
    """Return the observation rows behind each anchor reference, in the order prepare_inputs uses."""
    observations = data.observations
    rows = {}
    references = {ref for flow in model.flows if isinstance(flow, ShareFlow) for ref in flow.anchors}
    for reference in sorted(references):
        metal, series = _anchor_key(reference, model.metal)
        rows[reference] = observations[
            (observations["metal"] == metal)
            & (observations["series"] == series)
            & (observations["year"] >= boundary.first_year)
            & (observations["year"] <= boundary.last_year)
        ]
    return rows


@pytest.mark.parametrize("metal", ["Cu", "Fe", "Ag"])
def test_pedigree_mode_sets_anchor_sigmas(metal, jp_models, jp_data, shipped_quality):
    model = next(m for m in jp_models.metals if m.metal == metal)
    boundary = with_method(jp_models.boundary, "pedigree")
    shift = boundary.reporting_error.period_shift
    inputs = prepare_inputs(model, jp_data, boundary)
    checked = 0
    for reference, rows in anchor_rows(model, jp_data, boundary).items():
        anchors = inputs.anchors[reference]
        assert len(anchors) == len(rows)
        for anchor, row in zip(anchors, rows.itertuples()):
            expected = math.hypot(shipped_quality[row.source].sigma, shift if row.period != "CY" else 0.0)
            assert anchor.sigma == pytest.approx(expected, rel=1e-12), (reference, row.year, row.source)
            checked += 1
    assert checked > 0


def test_confidence_mode_keeps_table_sigmas(jp_models, jp_data):
    model = next(m for m in jp_models.metals if m.metal == "Cu")
    boundary = jp_models.boundary
    assert boundary.reporting_error.method == "confidence"
    inputs = prepare_inputs(model, jp_data, boundary)
    for reference, rows in anchor_rows(model, jp_data, boundary).items():
        for anchor, row in zip(inputs.anchors[reference], rows.itertuples()):
            assert anchor.sigma == boundary.reporting_error.sigma(row.confidence, row.period)


def test_pedigree_mode_changes_sigmas(jp_models, jp_data):
    model = next(m for m in jp_models.metals if m.metal == "Fe")
    table = prepare_inputs(model, jp_data, jp_models.boundary)
    pedigree = prepare_inputs(model, jp_data, with_method(jp_models.boundary, "pedigree"))
    before = [a.sigma for anchors in table.anchors.values() for a in anchors]
    after = [a.sigma for anchors in pedigree.anchors.values() for a in anchors]
    assert len(before) == len(after)
    assert before != after
    assert [a.tonnes for anchors in table.anchors.values() for a in anchors] == [
        a.tonnes for anchors in pedigree.anchors.values() for a in anchors
    ]


def test_anchor_sigma_adds_period_shift(jp_models):
    reporting = with_method(jp_models.boundary, "pedigree").reporting_error
    sigmas = {"scored": 0.04}
    assert anchor_sigma(reporting, Row("scored", "secondary", "CY"), sigmas) == 0.04
    fiscal = anchor_sigma(reporting, Row("scored", "secondary", "FY"), sigmas)
    assert fiscal == pytest.approx(math.hypot(0.04, reporting.period_shift))


def test_anchor_sigma_unscored_uses_table(jp_models):
    reporting = with_method(jp_models.boundary, "pedigree").reporting_error
    row = Row("unscored", "inferred", "NovOct")
    assert anchor_sigma(reporting, row, {"scored": 0.04}) == reporting.sigma("inferred", "NovOct")


USER_OBSERVATION = (
    "region,metal,year,period,series,value,unit,basis,source,citation,confidence,note\n"
    "JPN,Cu,1990,CY,refined_import,400,kt,metal_content,my-yearbook,table 3,primary,typed by hand\n"
)
USER_SOURCES = "source,publisher,title,url,year,licence\nmy-yearbook,me,a yearbook,,1991,own\n"


def test_unscored_user_source_falls_back(tmp_path, jp_models, caplog):
    user = tmp_path / "mine"
    (user / "jp").mkdir(parents=True)
    (user / "jp" / "observations.csv").write_text(USER_OBSERVATION, encoding="utf-8")
    (user / "sources_mine.csv").write_text(USER_SOURCES, encoding="utf-8")
    data = load_data([DATA_DIR, user], "jp")
    model = next(m for m in jp_models.metals if m.metal == "Cu")
    boundary = with_method(jp_models.boundary, "pedigree")

    quality._note_unscored.cache_clear()
    with caplog.at_level(logging.INFO, logger="uncertainty.quality"):
        inputs = prepare_inputs(model, data, boundary)
    year_index = 1990 - boundary.first_year
    mine = [a for a in inputs.anchors["refined_import"] if a.year_index == year_index]
    assert len(mine) == 1
    assert mine[0].sigma == boundary.reporting_error.sigma("primary", "CY")
    notes = [record for record in caplog.records if "my-yearbook" in record.getMessage()]
    assert len(notes) == 1
    assert notes[0].levelno == logging.INFO


def test_user_folder_scores_merge(tmp_path, jp_models):
    user = tmp_path / "mine"
    (user / "jp").mkdir(parents=True)
    (user / "jp" / "observations.csv").write_text(USER_OBSERVATION, encoding="utf-8")
    (user / "sources_mine.csv").write_text(USER_SOURCES, encoding="utf-8")
    (user / QUALITY_FILE).write_text(
        "source,reliability,completeness,temporal,geographical,technological,rationale\n"
        "my-yearbook,3,1,1,1,2,typed from a yearbook\n",
        encoding="utf-8",
    )
    data = load_data([DATA_DIR, user], "jp")
    model = next(m for m in jp_models.metals if m.metal == "Cu")
    inputs = prepare_inputs(model, data, with_method(jp_models.boundary, "pedigree"))
    year_index = 1990 - jp_models.boundary.first_year
    mine = [a for a in inputs.anchors["refined_import"] if a.year_index == year_index]
    assert mine[0].sigma == pytest.approx(pedigree_sigma(scores_of(3, 1, 1, 1, 2)), rel=1e-12)


# --- the boundary.toml key -----------------------------------------------------------


def write_boundary(tmp_path: Path, extra_line: str) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    text = (ROOT / "models" / "jp" / "boundary.toml").read_text(encoding="utf-8")
    text = text.replace("period_shift = 0.05\n", f"period_shift = 0.05\n{extra_line}\n", 1)
    (folder / "boundary.toml").write_text(text, encoding="utf-8")
    shutil.copy(ROOT / "models" / "jp" / "Cu.toml", folder / "Cu.toml")
    return folder


def test_boundary_method_default_is_confidence(jp_models):
    assert jp_models.boundary.reporting_error.method == "confidence"


def test_boundary_method_pedigree_read(tmp_path):
    models = load_models(write_boundary(tmp_path, 'method = "pedigree"'))
    assert models.boundary.reporting_error.method == "pedigree"
    assert models.boundary.reporting_error.primary == 0.05


@pytest.mark.parametrize("value", ['"pedigre"', "1"])
def test_boundary_method_invalid_rejected(tmp_path, value):
    with pytest.raises(InputError, match="reporting_error.method"):
        load_models(write_boundary(tmp_path, f"method = {value}"))
