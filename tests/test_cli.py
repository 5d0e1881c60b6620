"""Command line: exit status, error locations and atomic result folders."""


import numpy as np
import pytest
import xarray as xr

from conftest import IMPORT_MODEL, make_data, observation_rows, write_models
from uncertainty import cli
from uncertainty.errors import InputError
from uncertainty.report import OutputExistsError, atomic_folder, write_result
from uncertainty.simulate import simulate
from uncertainty.spec import load_models

GOOD_METAL = IMPORT_MODEL


def model_errors(tmp_path, text):
    folder = write_models(tmp_path / "models", {"Xa": text})
    with pytest.raises(InputError) as caught:
        load_models(folder)
    return caught.value.problems


def test_malformed_toml_names_file(tmp_path):
    problems = model_errors(tmp_path, GOOD_METAL + "\n[[flows]\n")
    assert len(problems) == 1
    assert problems[0].file.endswith("Xa.toml")
    assert problems[0].location == "TOML syntax"


def test_unknown_key_suggests_spelling(tmp_path):
    problems = model_errors(tmp_path, GOOD_METAL.replace("walk_step", "walk_stp"))
    messages = [str(problem) for problem in problems]
    assert any("flows[0].walk_stp" in message and "did you mean 'walk_step'" in message for message in messages)


@pytest.mark.parametrize(
    ("replacement", "location"),
    [
        ('family = "lognorm", s = 1.0', 'family = "lognormal", s = 1.0'),
        ("s = 1.0, scale = 0.1", "s = -1.0, scale = 0.1"),
        ("s = 1.0, scale = 0.1", "s = 1.0, scale = 0.0"),
        ("sign = 1", "sign = 2"),
        ('kind = "share"', 'kind = "shares"'),
    ],
)
def test_invalid_values_name_the_key(tmp_path, replacement, location):
    problems = model_errors(tmp_path, GOOD_METAL.replace(*[replacement, location]))
    assert all(problem.file.endswith("Xa.toml") for problem in problems)
    assert any(problem.location.startswith("flows[0]") for problem in problems)


def test_grade_must_stay_in_unit_interval(tmp_path):
    text = GOOD_METAL + 'grade = { family = "norm", loc = 0.3, scale = 0.05, source = "x" }\n'
    problems = model_errors(tmp_path, text)
    assert any(problem.location == "flows[0].grade" and "truncate" in problem.expected for problem in problems)


def test_every_problem_reported_at_once(tmp_path):
    text = GOOD_METAL.replace("walk_step = 0.1", "walk_step = -0.1").replace("sign = 1", "sign = 5")
    text = text.replace('name = "invented metal"', 'name = "invented metal"\ncolour = "red"')
    problems = model_errors(tmp_path, text)
    assert len(problems) >= 2
    locations = {problem.location for problem in problems}
    assert "colour" in locations


def test_proxy_must_name_earlier_flow(tmp_path):
    problems = model_errors(tmp_path, GOOD_METAL.replace('anchors = ["refined_import"]', 'anchors = []\n    proxy = "demand"'))
    assert any(problem.location == "flows[0].proxy" for problem in problems)


def test_cli_bad_model_exits_2_without_output(tmp_path, capsys):
    folder = write_models(tmp_path / "models", {"Xa": GOOD_METAL.replace("sign = 1", "sign = 7")})
    out = tmp_path / "result"
    status = cli.main(["run", "--models", str(folder), "--out", str(out), "--no-progress"])
    captured = capsys.readouterr()
    assert status == 2
    assert "Xa.toml: flows[0].sign" in captured.err
    assert "Traceback" not in captured.err
    assert not out.exists()


@pytest.mark.parametrize("argument", [["--draws", "0"], ["--draws", "-5"], ["--seed", "1.5"], ["--seed", "abc"]])
def test_cli_bad_numbers_exit_2(argument, capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(["run", *argument])
    assert caught.value.code == 2
    assert "expected" in capsys.readouterr().err


def test_cli_unknown_metal_exits_2(tmp_path, capsys):
    folder = write_models(tmp_path / "models", {"Xa": GOOD_METAL})
    status = cli.main(["run", "--models", str(folder), "--metals", "Zz", "--out", str(tmp_path / "r")])
    assert status == 2
    assert "Zz" in capsys.readouterr().err


def small_result(tmp_path):
    years = np.arange(1970, 1980)
    models = load_models(write_models(tmp_path / "models", {"Xa": GOOD_METAL}))
    world = [{**row, "region": "WLD"} for row in observation_rows("Xa", "world_production", years, np.full(10, 100.0))]
    data = make_data(world, observation_rows("Xa", "refined_import", [1975], [10.0]))
    return simulate(models, data, n_draws=50, seed=1), data


def test_existing_result_is_refused_without_force(tmp_path):
    dataset, data = small_result(tmp_path)
    target = tmp_path / "result"
    write_result(dataset, data.reference, target)
    before = (target / "stocks.nc").read_bytes()
    with pytest.raises(OutputExistsError):
        write_result(dataset, data.reference, target)
    assert (target / "stocks.nc").read_bytes() == before
    write_result(dataset, data.reference, target, force=True)
    assert (target / "comparison.csv").exists()


def test_interrupted_write_keeps_old_result(tmp_path):
    dataset, data = small_result(tmp_path)
    target = tmp_path / "result"
    write_result(dataset, data.reference, target)
    before = (target / "summary.csv").read_text()
    with pytest.raises(KeyboardInterrupt):
        with atomic_folder(target, force=True) as staging:
            (staging / "summary.csv").write_text("partial")
            raise KeyboardInterrupt
    assert (target / "summary.csv").read_text() == before
    leftovers = [path.name for path in tmp_path.iterdir() if path.name.startswith(".result")]
    assert leftovers == []


def test_result_round_trips_through_netcdf(tmp_path):
    dataset, data = small_result(tmp_path)
    target = tmp_path / "result"
    write_result(dataset, data.reference, target)
    reread = xr.open_dataset(target / "stocks.nc", engine="netcdf4").load()
    np.testing.assert_array_equal(reread["stock"].values, dataset["stock"].values)
    assert reread["stock"].attrs["units"] == "t"
    assert list(reread["metal"].values) == ["Xa"]
