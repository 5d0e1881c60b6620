"""Chunked runs: the same bits whatever the split, and the error of histogram quantiles."""

from pathlib import Path

import numpy as np
import pytest

from test_engine import walk_case
from uncertainty import cli
from uncertainty.chunked import QUANTILES, run_chunked
from uncertainty.data import load_data
from uncertainty.simulate import BLOCK_SIZE, simulate
from uncertainty.spec import load_models

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def case(tmp_path):
    models, data, _, _ = walk_case(tmp_path)
    return models, data


def test_chunk_size_does_not_change_draws(case):
    models, data = case
    whole = run_chunked(models, data, 4 * BLOCK_SIZE, seed=5, chunk_draws=4 * BLOCK_SIZE)
    split = run_chunked(models, data, 4 * BLOCK_SIZE, seed=5, chunk_draws=BLOCK_SIZE)
    np.testing.assert_array_equal(whole["reference_stock"].values, split["reference_stock"].values)
    np.testing.assert_array_equal(whole["observed_share"].values, split["observed_share"].values)
    np.testing.assert_allclose(whole["stock_mean"].values, split["stock_mean"].values, rtol=1e-12)


def test_chunked_matches_in_memory_run(case):
    models, data = case
    n_draws = 2 * BLOCK_SIZE + 100
    chunked = run_chunked(models, data, n_draws, seed=8, chunk_draws=BLOCK_SIZE)
    in_memory = simulate(models, data, n_draws, seed=8)
    year = models.boundary.reference_year
    np.testing.assert_array_equal(
        chunked["reference_stock"].values, in_memory["stock"].sel(year=year).values
    )
    np.testing.assert_allclose(
        chunked["stock_mean"].values, in_memory["stock"].mean("draw").values, rtol=1e-10
    )
    negative = (in_memory["stock"] < 0).mean("draw").values
    np.testing.assert_allclose(chunked["negative_draw_fraction"].values, negative, rtol=0, atol=1e-15)


def test_histogram_quantile_error_is_small(case):
    # Against exact quantiles of the same 16384 draws, the histogram quantiles
    # (2048 bins fixed by a first chunk of 4096 draws) err by less than 1 % of
    # the 95 % interval's width in every year.
    models, data = case
    n_draws = 16 * BLOCK_SIZE
    chunked = run_chunked(models, data, n_draws, seed=2, chunk_draws=4 * BLOCK_SIZE)
    exact = np.quantile(simulate(models, data, n_draws, seed=2)["stock"].values, QUANTILES, axis=0)
    exact = np.moveaxis(exact, 0, -1)
    approximate = chunked["stock_quantile"].values
    width = exact[..., -1] - exact[..., 0]
    error = np.abs(approximate - exact) / width[..., None]
    assert np.nanmax(error) < 0.01


def test_chunk_size_must_be_positive(case):
    models, data = case
    with pytest.raises(ValueError, match="positive number of draws"):
        run_chunked(models, data, 1000, seed=1, chunk_draws=0)


def test_chunks_of_1000_and_100000_same_bits(case):
    # 1,000 is not a multiple of the block size, so chunk boundaries cut blocks.
    models, data = case
    n_draws = 3 * BLOCK_SIZE + 7
    small = run_chunked(models, data, n_draws, seed=9, chunk_draws=1000)
    large = run_chunked(models, data, n_draws, seed=9, chunk_draws=100_000)
    np.testing.assert_array_equal(small["reference_stock"].values, large["reference_stock"].values)
    np.testing.assert_array_equal(small["observed_share"].values, large["observed_share"].values)
    np.testing.assert_allclose(small["stock_mean"].values, large["stock_mean"].values, rtol=1e-12)


def test_real_data_chunks_same_bits():
    models = load_models(ROOT / "models" / "jp").select(["Au", "In", "Fe"])
    data = load_data(ROOT / "data", "jp")
    small = run_chunked(models, data, 2100, seed=3, chunk_draws=1000)
    large = run_chunked(models, data, 2100, seed=3, chunk_draws=100_000)
    in_memory = simulate(models, data, 2100, seed=3)
    np.testing.assert_array_equal(small["reference_stock"].values, large["reference_stock"].values)
    reference = in_memory["stock"].sel(year=models.boundary.reference_year).transpose("draw", "metal")
    np.testing.assert_array_equal(small["reference_stock"].values, reference.values)


def test_dask_threads_give_same_bits(case):
    models, data = case
    local = run_chunked(models, data, 3 * BLOCK_SIZE, seed=4, chunk_draws=BLOCK_SIZE)
    threaded = run_chunked(models, data, 3 * BLOCK_SIZE, seed=4, chunk_draws=BLOCK_SIZE, use_dask=True)
    np.testing.assert_array_equal(local["reference_stock"].values, threaded["reference_stock"].values)


def test_local_cluster_two_workers_give_same_bits(case):
    distributed = pytest.importorskip("distributed")
    models, data = case
    local = run_chunked(models, data, 2 * BLOCK_SIZE, seed=6, chunk_draws=BLOCK_SIZE)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0", processes=True
    ) as cluster:
        remote = run_chunked(
            models, data, 2 * BLOCK_SIZE, seed=6, chunk_draws=BLOCK_SIZE, scheduler=cluster.scheduler_address
        )
    np.testing.assert_array_equal(local["reference_stock"].values, remote["reference_stock"].values)


def test_cli_chunked_run_writes_tables(tmp_path, capsys):
    from conftest import write_models
    from test_cli import GOOD_METAL
    from uncertainty import cli

    models = write_models(tmp_path / "models", {"Xa": GOOD_METAL}, 1970, 1979)
    data_dir = tmp_path / "data"
    # The invented metal needs world production: reuse the shipped folder layout.
    import shutil
    from pathlib import Path

    shutil.copytree(Path(__file__).resolve().parents[1] / "data", data_dir)
    with (data_dir / "world" / "world_production_test.csv").open("w") as stream:
        stream.write("region,metal,year,period,series,value,unit,basis,source,citation,confidence,note\n")
        for year in range(1970, 1980):
            stream.write(f"WLD,Xa,{year},CY,world_production,100,t,metal_content,usgs_ds140,invented,primary,\n")
    with (data_dir / "jp" / "observations_test.csv").open("w") as stream:
        stream.write("region,metal,year,period,series,value,unit,basis,source,citation,confidence,note\n")
        stream.write("JPN,Xa,1975,CY,refined_import,10,t,metal_content,usgs_ds140,invented,primary,\n")
    out = tmp_path / "result"
    status = cli.main(
        ["run", "--models", str(models), "--data", str(data_dir), "--draws", "2048", "--chunk", "1024",
         "--out", str(out), "--no-progress"]
    )
    assert status == 0
    for name in ("chunked.nc", "summary.csv", "comparison.csv", "figures/stock_Xa.png", "figures/stock_Xa.svg"):
        assert (out / name).is_file()
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "--models", str(models), "--data", str(data_dir), "--draws", "2048",
                  "--chunk", "0", "--out", str(tmp_path / "r2"), "--no-progress"])
    assert exit_info.value.code == 2
    assert "--chunk: expected a whole number >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--dask"], "--dask: argument: needs --chunk N"),
        (["--scheduler", "127.0.0.1:1"], "--scheduler: argument: needs --chunk N"),
        (["--dask", "--scheduler", "127.0.0.1:1", "--chunk", "1024"], "either --dask (local threads) or --scheduler"),
    ],
)
def test_dask_options_need_chunk(tmp_path, capsys, arguments, message):
    out = tmp_path / "result"
    status = cli.main(["run", "--metals", "In", "--draws", "16", "--out", str(out), "--no-progress", *arguments])
    assert status == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
