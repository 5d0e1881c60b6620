"""Yearly drift of sector export ratios outside the years where their spread was measured."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from test_bad_input import INVENTED_METAL, forbid_sampling, invented_run
from uncertainty.data import load_data
from uncertainty.engine import ratio_drift, simulate_metal
from uncertainty.simulate import block_streams, prepare_inputs
from uncertainty.spec import load_models

ROOT = Path(__file__).resolve().parents[1]
YEARS = np.arange(1900, 2020)
WINDOW = (1995, 2011)
STEP = 0.07


@pytest.fixture(scope="module")
def drift():
    return ratio_drift(YEARS, STEP, WINDOW, 40_000, np.random.default_rng(11))


def test_drift_is_zero_inside_window(drift):
    inside = (YEARS >= WINDOW[0]) & (YEARS <= WINDOW[1])
    assert np.all(drift[:, inside] == 0.0)


@pytest.mark.parametrize("year", [1900, 1950, 1994, 2012, 2019])
def test_drift_variance_grows_linearly(drift, year):
    # Variance step**2 * k at k years outside the window. With 40,000 draws the
    # sample variance has a relative sd of sqrt(2 / 40000) = 0.7 %; 4 % is 5.6 sd.
    distance = WINDOW[0] - year if year < WINDOW[0] else year - WINDOW[1]
    variance = drift[:, YEARS == year].var()
    assert variance == pytest.approx(STEP**2 * distance, rel=0.04)


def test_drift_steps_are_independent(drift):
    later = drift[:, YEARS == 2019].ravel() - drift[:, YEARS == 2015].ravel()
    earlier = drift[:, YEARS == 2015].ravel()
    assert abs(np.corrcoef(later, earlier)[0, 1]) < 0.02


def indium_exports(text_change: tuple[str, str] | None, tmp_path: Path) -> tuple[np.ndarray, list[str]]:
    """Draw indium's product exports from the shipped model, optionally with one text change."""
    models_dir = tmp_path / "models"
    models_dir.mkdir(exist_ok=True)
    for name in ("boundary.toml", "In.toml"):
        text = (ROOT / "models" / "jp" / name).read_text(encoding="utf-8")
        if text_change and name == "In.toml":
            assert text_change[0] in text
            text = text.replace(*text_change)
        (models_dir / name).write_text(text, encoding="utf-8")
    models = load_models(models_dir)
    model = models.metals[0]
    inputs = prepare_inputs(model, load_data(ROOT / "data", "jp"), models.boundary)
    draws = simulate_metal(model, inputs, 1024, block_streams(4, "In", 0))
    return draws.flows["product_export"], draws.all_notes()


def test_drift_inside_window_matches_fixed(tmp_path):
    with_drift, _ = indium_exports(None, tmp_path)
    model_text = (ROOT / "models" / "jp" / "In.toml").read_text(encoding="utf-8")
    assert "ratio_step = " in model_text
    step_line = next(line for line in model_text.splitlines() if line.startswith("ratio_step = "))
    fixed, _ = indium_exports((step_line, "ratio_step = 0.0"), tmp_path)
    inside = (YEARS >= WINDOW[0]) & (YEARS <= WINDOW[1])
    np.testing.assert_allclose(with_drift[:, inside], fixed[:, inside], rtol=1e-12)
    outside = YEARS == 1985
    assert not np.allclose(with_drift[:, outside], fixed[:, outside])


def test_large_step_caps_ratios_with_note(tmp_path):
    model_text = (ROOT / "models" / "jp" / "In.toml").read_text(encoding="utf-8")
    step_line = next(line for line in model_text.splitlines() if line.startswith("ratio_step = "))
    exports, notes = indium_exports((step_line, "ratio_step = 1.0"), tmp_path)
    assert any("drifted sector export ratio above 1" in note for note in notes)
    assert np.all(np.isfinite(exports))


DRIFT_KEYS = 'ratio_rationale = "test"\n'
BAD_DRIFT = [
    ("negative step", 'ratio_step = -0.1\nratio_step_years = [1995, 2011]\nratio_step_rationale = "test"\n',
     "flows[1].ratio_step", "yearly sd >= 0"),
    ("reversed years", 'ratio_step = 0.1\nratio_step_years = [2011, 1995]\nratio_step_rationale = "test"\n',
     "flows[1].ratio_step_years", "first <= last"),
    ("one year", 'ratio_step = 0.1\nratio_step_years = [1995]\nratio_step_rationale = "test"\n',
     "flows[1].ratio_step_years", "two whole years"),
    ("no rationale", 'ratio_step = 0.1\nratio_step_years = [1995, 2011]\n',
     "flows[1].ratio_step_rationale", "key missing"),
    ("empty rationale", 'ratio_step = 0.1\nratio_step_years = [1995, 2011]\nratio_step_rationale = " "\n',
     "flows[1].ratio_step_rationale", "an empty string"),
]


@pytest.mark.parametrize(("case", "keys", "location", "message"), BAD_DRIFT, ids=[case[0] for case in BAD_DRIFT])
def test_invalid_drift_keys_exit_2(tmp_path, capsys, monkeypatch, case, keys, location, message):
    forbid_sampling(monkeypatch)
    text = INVENTED_METAL.replace(DRIFT_KEYS, DRIFT_KEYS + keys)
    status, err, out = invented_run(capsys, tmp_path, text)
    assert status == 2
    lines = [line for line in err.splitlines() if f"Xa.toml: {location}:" in line]
    assert lines, err
    assert message in lines[0]
    assert not out.exists()
