"""Invalid input through the command line: exit status, message and output folder.

Each case breaks one model or data file in tmp_path and runs ``urbanmine``
through :func:`uncertainty.cli.main`. Invalid input must exit 2 before any
sampling and name the file and the row or key. A failed or interrupted run
must leave no output folder and keep an earlier result unchanged.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from conftest import write_models
from uncertainty import cli, simulate as simulate_module
from uncertainty.data import load_data
from uncertainty.simulate import simulate
from uncertainty.spec import load_models
from uncertainty.validate import DataCoverageWarning, check_models_against_data

ROOT = Path(__file__).resolve().parents[1]

#: An invented metal with a share flow and a product-export flow. Each case
#: replaces one line of it.
INVENTED_METAL = """
    metal = "Xa"
    name = "invented metal"

    [extrapolation]
    rule = "random_walk"
    before = 1976
    rationale = "test"

    [[flows]]
    name = "import"
    sign = 1
    kind = "share"
    anchors = ["refined_import"]
    walk_step = 0.1
    walk_rationale = "test"
    share_prior = { family = "lognorm", s = 1.0, scale = 0.1, rationale = "test" }
    grade = { family = "beta", a = 30, b = 70, source = "test" }

    [[flows]]
    name = "product_export"
    sign = -1
    kind = "product_export"
    demand = "net_direct_inflow"
    sectors = ["S1"]
    mapped_share = { family = "beta", a = 4, b = 2, rationale = "test" }
    ratio_sigma = 0.2
    ratio_rationale = "test"
"""

#: An indium row that the shipped data do not contain (In is anchored in 1988 only).
EXTRA_ROW = "JPN,In,1990,CY,refined_import,5,t,metal_content,{source},test row,primary,"


def run_cli(capsys, *arguments: str) -> tuple[int, str]:
    """Run urbanmine and return the exit status and standard error."""
    status = cli.main(list(arguments))
    return status, capsys.readouterr().err


def leftovers(folder: Path) -> list[str]:
    """Return the hidden staging folders that atomic writes left in ``folder``."""
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


def invented_run(capsys, tmp_path: Path, metal_text: str, *extra: str) -> tuple[int, str, Path]:
    """Run an invented model against the shipped data and return status, stderr and --out."""
    models = write_models(tmp_path / "models", {"Xa": metal_text})
    out = tmp_path / "result"
    status, err = run_cli(capsys, "run", "--models", str(models), "--out", str(out), "--no-progress", *extra)
    return status, err, out


@pytest.fixture
def shipped_copy(tmp_path):
    """Copy the shipped data and the indium model (with boundary.toml) into tmp_path.

    Returns the model folder and the data folder.
    """
    data = tmp_path / "data"
    shutil.copytree(ROOT / "data", data)
    models = tmp_path / "models"
    models.mkdir()
    for name in ("boundary.toml", "In.toml"):
        shutil.copy(ROOT / "models" / "jp" / name, models / name)
    return models, data


def run_shipped(capsys, tmp_path: Path, models: Path, data: Path, *extra: str) -> tuple[int, str, Path]:
    out = tmp_path / "result"
    arguments = ["run", "--models", str(models), "--data", str(data), "--out", str(out)]
    status, err = run_cli(capsys, *arguments, "--draws", "8", "--no-progress", *extra)
    return status, err, out


def first_source(data: Path) -> str:
    return pd.read_csv(data / "sources.csv", dtype=str)["source"].iloc[0]


def append_row(path: Path, line: str) -> int:
    """Append ``line`` to a CSV file and return its line number (the header is line 1)."""
    text = path.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text += "\n"
    path.write_text(text + line + "\n", encoding="utf-8")
    return text.count("\n") + 1


def edit_model(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{path.name} no longer contains {old!r}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def forbid_sampling(monkeypatch) -> None:
    """Make any call of simulate fail, so a test proves that no sampling started."""

    def fail(*args, **kwargs):
        raise AssertionError("simulate was called although the input is invalid")

    monkeypatch.setattr(simulate_module, "simulate", fail)


# --- Model files --------------------------------------------------------------


def test_malformed_toml_exits_2(tmp_path, capsys, monkeypatch):
    forbid_sampling(monkeypatch)
    status, err, out = invented_run(capsys, tmp_path, INVENTED_METAL + "\n[[flows]\nname = \n")
    assert status == 2
    assert "Xa.toml: TOML syntax: expected valid TOML" in err
    assert "line" in err
    assert "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("Xa", 'name = "invented metal"', 'name = "invented metal"\nnmae = "x"', "Xa.toml: nmae: "),
        ("Xa", "walk_step = 0.1", "walk_step = 0.1\nwalkstep = 0.1", "Xa.toml: flows[0].walkstep: "),
        ("boundary", "first_year = 1970", "first_year = 1970\nfrist_year = 1970", "boundary.toml: frist_year: "),
    ],
    ids=["top-level", "flow", "boundary"],
)
def test_unknown_key_suggests_spelling_cli(tmp_path, capsys, file, old, new, message):
    models = write_models(tmp_path / "models", {"Xa": INVENTED_METAL})
    edit_model(models / f"{file}.toml", old, new)
    out = tmp_path / "result"
    status, err = run_cli(capsys, "run", "--models", str(models), "--out", str(out))
    assert status == 2
    assert message in err
    assert "did you mean" in err
    assert not out.exists()


def test_unknown_family_suggests_spelling(tmp_path, capsys):
    text = INVENTED_METAL.replace('family = "lognorm"', 'family = "lognormal"')
    status, err, out = invented_run(capsys, tmp_path, text)
    assert status == 2
    assert "Xa.toml: flows[0].share_prior.family:" in err
    assert "did you mean 'lognorm'" in err
    assert not out.exists()


INVALID_PARAMETERS = [
    ("negative scale", "s = 1.0, scale = 0.1", "s = 1.0, scale = -0.1", "flows[0].share_prior", "positive scale"),
    ("zero scale", "a = 4, b = 2", "a = 4, b = 2, scale = 0", "flows[1].mapped_share", "positive scale"),
    ("shape out of range", "a = 30, b = 70", "a = -30, b = 70", "flows[0].grade", "shapes in range"),
    (
        "truncate reversed",
        "a = 30, b = 70",
        "a = 30, b = 70, truncate = [0.9, 0.1]",
        "flows[0].grade.truncate",
        "lower < upper",
    ),
    (
        "mapped share above 1",
        'family = "beta", a = 4, b = 2',
        'family = "uniform", loc = 0.5, scale = 1.0',
        "flows[1].mapped_share",
        "draws within [0.0, 1.0]",
    ),
    (
        "grade support below 0",
        'family = "beta", a = 30, b = 70',
        'family = "uniform", loc = -0.2, scale = 0.5',
        "flows[0].grade",
        "draws within [0.0, 1.0]",
    ),
    (
        "untruncated normal mapped share",
        'family = "beta", a = 4, b = 2',
        'family = "norm", loc = 0.7, scale = 0.1',
        "flows[1].mapped_share",
        "add truncate = [0.0, 1.0]",
    ),
]


@pytest.mark.parametrize(
    ("case", "old", "new", "location", "expected"),
    INVALID_PARAMETERS,
    ids=[case[0] for case in INVALID_PARAMETERS],
)
def test_invalid_parameters_exit_2(tmp_path, capsys, monkeypatch, case, old, new, location, expected):
    forbid_sampling(monkeypatch)
    status, err, out = invented_run(capsys, tmp_path, INVENTED_METAL.replace(old, new, 1))
    assert status == 2
    lines = [line for line in err.splitlines() if f"Xa.toml: {location}:" in line]
    assert lines, err
    assert expected in lines[0]
    assert not out.exists()


def test_truncated_normal_mapped_share_accepted(tmp_path):
    text = INVENTED_METAL.replace(
        'family = "beta", a = 4, b = 2', 'family = "norm", loc = 0.7, scale = 0.1, truncate = [0, 1]'
    )
    models = load_models(write_models(tmp_path / "models", {"Xa": text}))
    assert models.metals[0].flow("product_export").mapped_share.support() == (0.0, 1.0)


def test_problems_of_all_files_in_one_pass(tmp_path, capsys):
    broken = INVENTED_METAL.replace("sign = 1", "sign = 3")
    other = INVENTED_METAL.replace('metal = "Xa"', 'metal = "Xb"').replace("walk_step = 0.1", "walk_step = -1")
    models = write_models(tmp_path / "models", {"Xa": broken, "Xb": other})
    edit_model(models / "boundary.toml", "primary = 0.0", "primary = -0.5")
    status, err = run_cli(capsys, "run", "--models", str(models), "--out", str(tmp_path / "result"))
    assert status == 2
    assert "invalid input (3 problem(s))" in err
    assert "boundary.toml: reporting_error.primary: expected a sd >= 0, found -0.5" in err
    assert "Xa.toml: flows[0].sign:" in err
    assert "Xb.toml: flows[0].walk_step:" in err


# --- Models against data --------------------------------------------------------


def test_metal_without_world_production(tmp_path, capsys, shipped_copy):
    models, data = shipped_copy
    text = (models / "In.toml").read_text(encoding="utf-8").replace('metal = "In"', 'metal = "Xx"')
    (models / "Xx.toml").write_text(text, encoding="utf-8")
    status, err, out = run_shipped(capsys, tmp_path, models, data)
    assert status == 2
    assert "Xx.toml: metal: expected a metal with world production" in err
    assert "'Xx' has none" in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("missing", "expected"),
    [
        ("", "{data}: folder: expected a data folder, found no such folder"),
        ("sources.csv", "{data}: sources.csv: expected a source list, found no such file"),
        (
            "jp/io_export_ratios_2000.csv",
            "{data}/jp/io_export_ratios_2000.csv: file: expected an existing CSV file, found no such file",
        ),
    ],
    ids=["data folder", "sources.csv", "export ratios"],
)
def test_missing_data_file_or_folder(tmp_path, capsys, shipped_copy, missing, expected):
    models, data = shipped_copy
    if missing:
        (data / missing).unlink()
    else:
        shutil.rmtree(data)
    status, err, out = run_shipped(capsys, tmp_path, models, data)
    assert status == 2
    assert expected.format(data=data) in err
    assert "(1 problem(s))" in err
    assert not out.exists()


def test_missing_model_folder(tmp_path, capsys):
    out = tmp_path / "result"
    status, err = run_cli(capsys, "run", "--models", str(tmp_path / "nowhere"), "--out", str(out))
    assert status == 2
    assert f"{tmp_path / 'nowhere'}: folder: expected a folder of model files" in err
    assert not out.exists()


def test_missing_column_exits_2(tmp_path, capsys, shipped_copy):
    models, data = shipped_copy
    path = data / "jp" / "observations.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False).drop(columns="unit")
    table.to_csv(path, index=False)
    status, err, out = run_shipped(capsys, tmp_path, models, data)
    assert status == 2
    assert f"{path}: header: expected column 'unit'" in err
    assert not out.exists()


# Loader-level checks of these rows are in test_data.py. Here the command line
# must turn them into exit status 2 with the file and row.
BAD_DATA_ROWS = [
    ("non-numeric", ",5,t,", ",five,t,", "a numeric value"),
    ("empty value", ",5,t,", ",,t,", "a numeric value"),
    ("nan", ",5,t,", ",NaN,t,", "a finite value"),
    ("infinite", ",5,t,", ",-inf,t,", "a finite value"),
    ("negative tonnage", ",5,t,", ",-5,t,", "a value of zero or more"),
    ("year after 2100", ",1990,", ",2200,", "a year in 1800-2100"),
    ("year before 1800", ",1990,", ",1799,", "a year in 1800-2100"),
    ("ounce without troy", ",t,", ",oz,", "a unit in"),
    ("MT for metric tons", ",t,", ",MT,", "a unit in"),
    ("pounds", ",t,", ",lb,", "a unit in"),
    ("troy ounces of ore", ",t,metal_content,", ",koz,gross_weight,", "a unit of t, kt, Mt or kg for a gross_weight row"),
]


@pytest.mark.parametrize(
    ("case", "old", "new", "expected"), BAD_DATA_ROWS, ids=[case[0] for case in BAD_DATA_ROWS]
)
def test_bad_data_row_exits_2(tmp_path, capsys, monkeypatch, shipped_copy, case, old, new, expected):
    forbid_sampling(monkeypatch)
    models, data = shipped_copy
    path = data / "jp" / "observations.csv"
    line = append_row(path, EXTRA_ROW.format(source=first_source(data)).replace(old, new, 1))
    status, err, out = run_shipped(capsys, tmp_path, models, data)
    assert status == 2
    assert "(1 problem(s))" in err
    assert f"{path}: row {line}: expected {expected}" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_duplicate_row_names_both_lines(tmp_path, capsys, shipped_copy):
    models, data = shipped_copy
    path = data / "jp" / "observations.csv"
    row = EXTRA_ROW.format(source=first_source(data))
    first = append_row(path, row)
    second = append_row(path, row.replace(",5,t,", ",6,t,"))
    status, err, out = run_shipped(capsys, tmp_path, models, data)
    assert status == 2
    assert f"{path}: row {second}: expected one row per (region, metal, year, period, series, basis, source)" in err
    assert f"a repeat of line {first}" in err
    assert not out.exists()


def test_row_order_does_not_matter(tmp_path, shipped_copy):
    models, data = shipped_copy
    # Platinum-group metals have many anchors, where order once changed the draws.
    shutil.copy(ROOT / "models" / "jp" / "PGM.toml", models / "PGM.toml")
    reversed_data = tmp_path / "reversed"
    shutil.copytree(data, reversed_data)
    files = [*sorted((data / "jp").glob("observations*.csv")), data / "world" / "world_production.csv"]
    for path in files:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        table.iloc[::-1].to_csv(reversed_data / path.relative_to(data), index=False)
    model_set = load_models(models)
    in_order = simulate(model_set, load_data(data), n_draws=16, seed=3)
    shuffled = simulate(model_set, load_data(reversed_data), n_draws=16, seed=3)
    np.testing.assert_array_equal(shuffled["stock"].values, in_order["stock"].values)


def test_gross_weight_anchor_without_grade(tmp_path, capsys, shipped_copy):
    models, data = shipped_copy
    text = (models / "In.toml").read_text(encoding="utf-8")
    grade_line = next(line for line in text.splitlines() if line.startswith("grade = "))
    (models / "In.toml").write_text(text.replace(grade_line + "\n", ""), encoding="utf-8")
    path = data / "jp" / "observations.csv"
    row = EXTRA_ROW.format(source=first_source(data)).replace("metal_content", "gross_weight")
    line = append_row(path, row)
    status, err, out = run_shipped(capsys, tmp_path, models, data)
    assert status == 2
    assert "In.toml: flows[1].grade: expected a grade distribution" in err
    assert f"{path} row {line}" in err
    assert not out.exists()


def test_world_production_missing_in_reference_year(tmp_path, capsys, shipped_copy):
    models, data = shipped_copy
    path = data / "world" / "world_production.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table[~((table["metal"] == "In") & (table["year"] == "2005"))].to_csv(path, index=False)
    status, err, out = run_shipped(capsys, tmp_path, models, data)
    assert status == 2
    assert "In.toml: metal: expected world production in the reference year 2005" in err
    assert not out.exists()


def test_zero_world_production_in_constant_share_year(tmp_path, capsys, shipped_copy):
    models, data = shipped_copy
    edit_model(
        models / "In.toml",
        'rule = "random_walk"',
        'rule = "constant_share"\nfactor = { family = "lognorm", s = 0.3, scale = 1.0, rationale = "test" }',
    )
    path = data / "world" / "world_production.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.loc[(table["metal"] == "In") & (table["year"] == "1976"), "value"] = "0"
    table.to_csv(path, index=False)
    status, err, out = run_shipped(capsys, tmp_path, models, data)
    assert status == 2
    assert "In.toml: extrapolation.before: expected a year with world production above 0" in err
    assert "found 0" in err
    assert not out.exists()


def test_export_ratio_above_one(tmp_path, capsys, shipped_copy):
    models, data = shipped_copy
    path = data / "jp" / "io_export_ratios_2000.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    row = int(np.flatnonzero(table["io_code"] == "3359021")[0])
    table.loc[row, "induced_export_ratio"] = "1.5"
    table.to_csv(path, index=False)
    status, err, out = run_shipped(capsys, tmp_path, models, data)
    assert status == 2
    assert f"{path}: row {row + 2}: expected a number in [0, 1] in 'induced_export_ratio', found '1.5'" in err
    assert not out.exists()


def test_sector_absent_from_ratio_table(tmp_path, capsys, shipped_copy):
    models, data = shipped_copy
    edit_model(models / "In.toml", '"3359099"', '"9999999"')
    status, err, out = run_shipped(capsys, tmp_path, models, data)
    assert status == 2
    assert "In.toml: flows[5].sectors: expected a sector code of the export-ratio table, found '9999999'" in err
    assert not out.exists()


# --- Arguments -------------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [["--n", "0"], ["--bootstrap", "-1"], ["--seed", "1.5"], ["--seed", "-2"]],
    ids=["n zero", "bootstrap negative", "seed fraction", "seed negative"],
)
def test_sensitivity_bad_numbers_exit_2(tmp_path, capsys, arguments):
    # The same checks for 'run' are in test_cli.py.
    with pytest.raises(SystemExit) as caught:
        cli.main(["sensitivity", "--out", str(tmp_path / "sobol"), *arguments])
    assert caught.value.code == 2
    assert "expected" in capsys.readouterr().err
    assert not (tmp_path / "sobol").exists()


# --- Output folder ---------------------------------------------------------------


def test_output_not_writable_exits_2(tmp_path, capsys, monkeypatch, shipped_copy):
    forbid_sampling(monkeypatch)
    models, data = shipped_copy
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    # The tests may run as root, which chmod cannot stop, so the check is faked.
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != locked and real_access(path, mode))
    out = locked / "result"
    arguments = ["run", "--models", str(models), "--data", str(data), "--out", str(out), "--no-progress"]
    status, err = run_cli(capsys, *arguments)
    assert status == 2
    assert f"{locked} is not writable" in err
    assert not out.exists()


def test_existing_result_rejected_without_force(tmp_path, capsys, monkeypatch, shipped_copy):
    forbid_sampling(monkeypatch)
    models, data = shipped_copy
    out = tmp_path / "result"
    out.mkdir()
    (out / "stocks.nc").write_bytes(b"earlier result")
    status, err, _ = run_shipped(capsys, tmp_path, models, data)
    assert status == 2
    assert "already contains a result (stocks.nc)" in err
    assert "--force" in err
    assert (out / "stocks.nc").read_bytes() == b"earlier result"


@pytest.mark.parametrize("force", [False, True])
def test_foreign_folder_rejected_even_forced(tmp_path, capsys, monkeypatch, shipped_copy, force):
    forbid_sampling(monkeypatch)
    models, data = shipped_copy
    out = tmp_path / "result"
    out.mkdir()
    (out / "thesis.tex").write_text("not a result")
    status, err, _ = run_shipped(capsys, tmp_path, models, data, *(["--force"] if force else []))
    assert status == 2
    assert "is a folder with other content and no stocks.nc" in err
    assert (out / "thesis.tex").read_text() == "not a result"


def test_force_keeps_user_files_in_result(tmp_path, capsys, monkeypatch, shipped_copy):
    forbid_sampling(monkeypatch)
    models, data = shipped_copy
    out = tmp_path / "result"
    out.mkdir()
    (out / "stocks.nc").write_bytes(b"earlier result")
    (out / "my_notes.txt").write_text("kept")
    status, err, _ = run_shipped(capsys, tmp_path, models, data, "--force")
    assert status == 2
    assert "contains files that urbanmine does not write (my_notes.txt)" in err
    assert (out / "my_notes.txt").read_text() == "kept"
    assert (out / "stocks.nc").read_bytes() == b"earlier result"


@pytest.mark.parametrize("user_file", ["figures/mine.txt", "agreement/notes.md", "agreement/figures/draft.txt"])
def test_force_keeps_user_files_in_subfolders(tmp_path, capsys, monkeypatch, shipped_copy, user_file):
    forbid_sampling(monkeypatch)
    models, data = shipped_copy
    out = tmp_path / "result"
    (out / user_file).parent.mkdir(parents=True)
    (out / "stocks.nc").write_bytes(b"earlier result")
    (out / "figures" / "stock_In.png").parent.mkdir(exist_ok=True)
    (out / "figures" / "stock_In.png").write_bytes(b"figure")
    (out / user_file).write_text("kept")
    status, err, _ = run_shipped(capsys, tmp_path, models, data, "--force")
    assert status == 2
    assert f"does not write ({user_file})" in err
    assert (out / user_file).read_text() == "kept"


def test_result_written_meanwhile_is_kept(tmp_path, capsys, monkeypatch, shipped_copy):
    # Another run finishes into the same folder while this one simulates.
    models, data = shipped_copy
    out = tmp_path / "result"
    real_simulate = simulate_module.simulate

    def simulate_while_other_run_finishes(*args, **kwargs):
        dataset = real_simulate(*args, **kwargs)
        out.mkdir()
        (out / "stocks.nc").write_bytes(b"other run")
        return dataset

    monkeypatch.setattr(simulate_module, "simulate", simulate_while_other_run_finishes)
    status, err, _ = run_shipped(capsys, tmp_path, models, data)
    assert status == 2
    assert "already contains a result (stocks.nc)" in err
    assert (out / "stocks.nc").read_bytes() == b"other run"
    assert leftovers(tmp_path) == []


@pytest.fixture
def earlier_result(tmp_path, capsys, shipped_copy):
    """Write a complete result to tmp_path/result and return the bytes of its stocks.nc."""
    models, data = shipped_copy
    status, err, out = run_shipped(capsys, tmp_path, models, data)
    assert status == 0, err
    return (out / "stocks.nc").read_bytes()


def test_disk_full_keeps_earlier_result(tmp_path, capsys, monkeypatch, shipped_copy, earlier_result):
    models, data = shipped_copy

    def disk_full(self, path, *args, **kwargs):
        Path(path).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(xr.Dataset, "to_netcdf", disk_full)
    status, err, out = run_shipped(capsys, tmp_path, models, data, "--force")
    assert status == 2
    assert "the disk is full" in err
    assert "stocks.nc" in err
    assert "Traceback" not in err
    assert (out / "stocks.nc").read_bytes() == earlier_result
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("where", ["simulate", "write"])
def test_interruption_exits_130(tmp_path, capsys, monkeypatch, shipped_copy, earlier_result, where):
    models, data = shipped_copy

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    if where == "simulate":
        monkeypatch.setattr(simulate_module, "simulate", interrupt)
    else:
        monkeypatch.setattr(xr.Dataset, "to_netcdf", interrupt)
    status, err, out = run_shipped(capsys, tmp_path, models, data, "--force")
    assert status == 130
    assert "interrupted" in err
    assert (out / "stocks.nc").read_bytes() == earlier_result
    assert leftovers(tmp_path) == []


def test_interrupt_during_write_is_deferred(tmp_path, capsys, monkeypatch, shipped_copy, earlier_result):
    # A Ctrl-C that arrives while stocks.nc is written takes effect once the write is done.
    models, data = shipped_copy
    real_to_netcdf = xr.Dataset.to_netcdf
    finished = []

    def write_then_interrupt(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        result = real_to_netcdf(self, *args, **kwargs)
        finished.append(True)
        return result

    monkeypatch.setattr(xr.Dataset, "to_netcdf", write_then_interrupt)
    status, err, out = run_shipped(capsys, tmp_path, models, data, "--force")
    assert finished == [True]
    assert status == 130
    assert (out / "stocks.nc").read_bytes() == earlier_result
    assert leftovers(tmp_path) == []


def test_interruption_leaves_no_new_folder(tmp_path, capsys, monkeypatch, shipped_copy):
    models, data = shipped_copy

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.Dataset, "to_netcdf", interrupt)
    status, _, out = run_shipped(capsys, tmp_path, models, data)
    assert status == 130
    assert not out.exists()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("verbose", [False, True])
def test_internal_error_exits_1(tmp_path, capsys, monkeypatch, shipped_copy, verbose):
    models, data = shipped_copy

    def broken(*args, **kwargs):
        raise RuntimeError("invented failure\nsecond line")

    monkeypatch.setattr(simulate_module, "simulate", broken)
    status, err, out = run_shipped(capsys, tmp_path, models, data, *(["--verbose"] if verbose else []))
    assert status == 1
    message = [line for line in err.splitlines() if line.startswith("urbanmine:")]
    assert message == [
        "urbanmine: internal error: RuntimeError: invented failure"
        + ("" if verbose else " (run again with --verbose for the traceback)")
    ]
    assert ("Traceback" in err) is verbose
    if not verbose:
        assert len(err.strip().splitlines()) == 1
    assert not out.exists()


# --- Other subcommands -------------------------------------------------------------


@pytest.mark.parametrize("exists", [False, True], ids=["missing folder", "folder without result"])
def test_report_without_result_exits_2(tmp_path, capsys, exists):
    folder = tmp_path / "run"
    if exists:
        folder.mkdir()
    status, err = run_cli(capsys, "report", str(folder))
    assert status == 2
    assert f"{folder} contains no result: stocks.nc not found" in err
    assert "Traceback" not in err


def test_report_with_missing_data_exits_2(tmp_path, capsys, shipped_copy, earlier_result):
    status, err = run_cli(capsys, "report", str(tmp_path / "result"), "--data", str(tmp_path / "nowhere"))
    assert status == 2
    assert f"{tmp_path / 'nowhere'}: folder: expected a data folder" in err
    assert (tmp_path / "result" / "stocks.nc").read_bytes() == earlier_result


def test_sensitivity_invalid_model_exits_2(tmp_path, capsys):
    models = write_models(tmp_path / "models", {"Xa": INVENTED_METAL.replace("ratio_sigma = 0.2", "ratio_sigma = -1")})
    out = tmp_path / "sobol"
    status, err = run_cli(capsys, "sensitivity", "--models", str(models), "--out", str(out), "--n", "256")
    assert status == 2
    assert "Xa.toml: flows[1].ratio_sigma: expected a log-scale sd >= 0, found -1.0" in err
    assert not out.exists()


def test_sensitivity_missing_models_exits_2(tmp_path, capsys):
    out = tmp_path / "sobol"
    status, err = run_cli(capsys, "sensitivity", "--models", str(tmp_path / "nowhere"), "--out", str(out))
    assert status == 2
    assert "folder: expected a folder of model files, found no such folder" in err
    assert not out.exists()


def test_sensitivity_checks_output_first(tmp_path, capsys, monkeypatch, shipped_copy):
    models, data = shipped_copy

    def fail(*args, **kwargs):
        raise AssertionError("the Sobol design was built although --out contains a result")

    monkeypatch.setattr("uncertainty.sobol.GroupedSobol", fail)
    out = tmp_path / "sobol"
    out.mkdir()
    (out / "sobol.csv").write_text("earlier")
    arguments = ["sensitivity", "--models", str(models), "--data", str(data), "--out", str(out), "--n", "256"]
    status, err = run_cli(capsys, *arguments)
    assert status == 2
    assert "already contains a result (sobol.csv)" in err
    assert (out / "sobol.csv").read_text() == "earlier"


def test_sensitivity_small_n_rejected(tmp_path, capsys):
    out = tmp_path / "sobol"
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["sensitivity", "--out", str(out), "--n", "3"])
    assert exit_info.value.code == 2
    assert "--n: expected a whole number >= 256, got 3" in capsys.readouterr().err
    assert not out.exists()


def test_misspelled_anchor_suggests_series(tmp_path, shipped_copy):
    models, data = shipped_copy
    edit_model(models / "In.toml", 'anchors = ["refined_import"]', 'anchors = ["refined_imprt"]')
    with pytest.warns(DataCoverageWarning, match="did you mean 'refined_import'"):
        check_models_against_data(load_models(models), load_data(data, "jp"))


def test_several_data_files_listed(tmp_path, capsys, monkeypatch, shipped_copy):
    forbid_sampling(monkeypatch)
    models, data = shipped_copy
    source = first_source(data)
    world_line = append_row(data / "world" / "world_production.csv", f"WLD,In,1990,CY,world_production,many,t,metal_content,{source},test row,primary,")
    jp_line = append_row(data / "jp" / "observations.csv", f"JPN,In,1990,CY,refined_import,-5,t,metal_content,{source},test row,primary,")
    status, err, out = run_shipped(capsys, tmp_path, models, data)
    assert status == 2
    assert f"world_production.csv: row {world_line}" in err
    assert f"observations.csv: row {jp_line}" in err
    assert not out.exists()


def test_interrupt_during_load_is_kept(tmp_path, capsys, monkeypatch, shipped_copy, earlier_result):
    # A Ctrl-C while report reads stocks.nc stops it with 130 once the read is done.
    real_load = xr.Dataset.load

    def load_then_interrupt(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return real_load(self, *args, **kwargs)

    monkeypatch.setattr(xr.Dataset, "load", load_then_interrupt)
    summary = (tmp_path / "result" / "summary.csv").read_bytes()
    status, _ = run_cli(capsys, "report", str(tmp_path / "result"))
    assert status == 130
    assert (tmp_path / "result" / "summary.csv").read_bytes() == summary
