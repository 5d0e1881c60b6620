"""Benchmarks of the stock engine, printed as ratios measured in one process.

Usage (not part of the test suite; needs the `benchmark` extra for threadpoolctl):

    python benchmarks/run.py [--quick] [--memory-draws 100000,1000000]

(a) the vectorised engine against a per-draw Python loop of the same model,
(b) the engine against a memory-bandwidth bound: copying, with numpy, arrays
    of the size of the flows the engine produced. Two parts of the engine
    are also timed alone against the same kind of bound: drawing the
    standard normals that one block consumes, and the stock kernel
    (increments and cumulative stocks from given flows),
(c) peak resident memory of chunked runs of all metals, each in a child process,
(d) a chunked run on a dask LocalCluster with one worker and with two.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from uncertainty.chunked import prepare_metals, run_chunked  # noqa: E402
from uncertainty.data import load_data  # noqa: E402
from uncertainty.engine import cumulative_stock, metal_increment, simulate_metal  # noqa: E402
from uncertainty.shares import ConditionedWalk  # noqa: E402
from uncertainty.simulate import BLOCK_SIZE, block_streams  # noqa: E402
from uncertainty.spec import ProductExportFlow, load_models  # noqa: E402


def processor_name() -> str:
    """Return the CPU model from /proc/cpuinfo on Linux, else what platform reports."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown processor"


def best_of(function, repeats: int = 3) -> float:
    """Return the shortest wall time of ``repeats`` calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def engine_against_loop(prepared, n_loop: int) -> tuple[float, float, float]:
    """Return seconds per draw for the vectorised engine and for a per-draw loop, and their ratio."""

    def vectorised():
        for metal in prepared:
            simulate_metal(metal.model, metal.inputs, BLOCK_SIZE, block_streams(1, metal.model.metal, 0), dict(metal.walks))

    def loop():
        for metal in prepared:
            cache = dict(metal.walks)
            for draw in range(n_loop):
                simulate_metal(metal.model, metal.inputs, 1, block_streams(1, metal.model.metal, draw), cache)

    per_draw_vectorised = best_of(vectorised) / BLOCK_SIZE
    per_draw_loop = best_of(loop, repeats=1) / n_loop
    return per_draw_vectorised, per_draw_loop, per_draw_loop / per_draw_vectorised


def engine_against_copy(prepared) -> tuple[float, float, float]:
    """Return engine seconds, copy seconds for arrays of the same total size, and their ratio."""
    outputs = []

    def vectorised():
        outputs.clear()
        for metal in prepared:
            draws = simulate_metal(metal.model, metal.inputs, BLOCK_SIZE, block_streams(2, metal.model.metal, 0), dict(metal.walks))
            outputs.extend(draws.flows.values())

    engine = best_of(vectorised)
    copy_time = copy_seconds([array.shape for array in outputs])
    return engine, copy_time, engine / copy_time


def copy_seconds(shapes: list[tuple[int, ...]]) -> float:
    """Return the best time to copy float64 arrays of ``shapes`` into preallocated arrays."""
    sources = [np.random.default_rng(0).random(shape) for shape in shapes]
    targets = [np.empty_like(array) for array in sources]

    def copy():
        for source, target in zip(sources, targets):
            np.copyto(target, source)

    return best_of(copy, repeats=5)


def normals_against_copy(prepared) -> tuple[float, float, float]:
    """Return seconds to draw one block's random-walk normals, copy seconds for arrays of that size, and their ratio."""
    shapes = [
        (BLOCK_SIZE, walk.n_normals)
        for metal in prepared
        for walk in metal.walks.values()
        if isinstance(walk, ConditionedWalk)
    ]
    # Export-ratio drift walks draw one normal per draw and year.
    shapes += [
        (BLOCK_SIZE, metal.inputs.years.size)
        for metal in prepared
        for flow in metal.model.flows
        if isinstance(flow, ProductExportFlow) and flow.ratio_step > 0
    ]
    generator = np.random.default_rng(3)

    def draw():
        for shape in shapes:
            generator.standard_normal(shape)

    seconds = best_of(draw)
    copy_time = copy_seconds(shapes)
    return seconds, copy_time, seconds / copy_time


def kernel_against_copy(prepared) -> tuple[float, float, float]:
    """Return seconds of the stock kernel on one block's flows, copy seconds for the flows, and their ratio."""
    blocks = [
        (metal.model, simulate_metal(metal.model, metal.inputs, BLOCK_SIZE, block_streams(4, metal.model.metal, 0), dict(metal.walks)).flows)
        for metal in prepared
    ]

    def kernel():
        for model, flows in blocks:
            cumulative_stock(metal_increment(model, flows))

    seconds = best_of(kernel, repeats=5)
    copy_time = copy_seconds([array.shape for _, flows in blocks for array in flows.values()])
    return seconds, copy_time, seconds / copy_time


def peak_memory(n_draws: int, chunk: int) -> tuple[float, float]:
    """Run a chunked run of all metals in a child process; return (seconds, peak RSS in MB)."""
    code = (
        "import resource, sys, time; sys.path.insert(0, %r)\n"
        "from uncertainty.chunked import run_chunked\n"
        "from uncertainty.data import load_data\n"
        "from uncertainty.spec import load_models\n"
        "models = load_models(%r); data = load_data(%r, 'jp')\n"
        "start = time.perf_counter()\n"
        "run_chunked(models, data, %d, 1, %d)\n"
        "print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    ) % (str(ROOT), str(ROOT / "models" / "jp"), str(ROOT / "data"), n_draws, chunk)
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds, megabytes = output.stdout.split()
    return float(seconds), float(megabytes)


def dask_workers(models, data, n_draws: int, chunk: int) -> dict[int, float]:
    """Return wall seconds of a chunked run on a LocalCluster with 1 and with 2 workers."""
    from distributed import LocalCluster

    seconds = {}
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster:
            start = time.perf_counter()
            run_chunked(models, data, n_draws, 1, chunk, scheduler=cluster.scheduler_address)
            seconds[workers] = time.perf_counter() - start
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a check that the script runs")
    parser.add_argument("--memory-draws", default="100000,1000000", help="draw counts for (c), comma-separated")
    args = parser.parse_args()

    models = load_models(ROOT / "models" / "jp")
    data = load_data(ROOT / "data", "jp")
    prepared = prepare_metals(models, data, 1)
    print(f"machine: {platform.machine()}, {processor_name()}, {os.cpu_count()} cores, python {platform.python_version()}, numpy {np.__version__}")
    print(f"metals: {len(prepared)}, years: {prepared[0].inputs.years.size}, block: {BLOCK_SIZE} draws")

    # (a) and (b) compare single-core timings, so BLAS gets one thread too.
    with threadpool_limits(limits=1):
        vectorised, loop, ratio = engine_against_loop(prepared, 16 if args.quick else 64)
        print(f"(a) engine {vectorised * 1e3:.3f} ms/draw, per-draw loop {loop * 1e3:.2f} ms/draw: {ratio:.0f}x faster")

        engine, output_copy, ratio = engine_against_copy(prepared)
        print(f"(b) engine {engine:.3f} s for one block, numpy copy of its output {output_copy:.4f} s: {ratio:.1f}x the copy time")
        seconds, copy_time, ratio = normals_against_copy(prepared)
        print(
            f"(b) its standard normals alone {seconds:.3f} s: {seconds / output_copy:.1f}x the copy of the output, "
            f"{ratio:.1f}x a copy of arrays of their own size ({copy_time:.4f} s)"
        )
        seconds, copy_time, ratio = kernel_against_copy(prepared)
        print(f"(b) stock kernel on given flows {seconds:.4f} s, copy of the flows {copy_time:.4f} s: {ratio:.1f}x")

    sizes = [4096] if args.quick else [int(size) for size in args.memory_draws.split(",")]
    for n_draws in sizes:
        chunk = min(64 * BLOCK_SIZE, -(-n_draws // BLOCK_SIZE) * BLOCK_SIZE)
        seconds, megabytes = peak_memory(n_draws, chunk)
        print(f"(c) {n_draws} draws, chunks of {chunk}: {seconds:.0f} s, peak resident memory {megabytes:.0f} MB")

    n_draws = 8 * BLOCK_SIZE if args.quick else 64 * BLOCK_SIZE
    seconds = dask_workers(models, data, n_draws, 4 * BLOCK_SIZE if not args.quick else BLOCK_SIZE)
    print(f"(d) {n_draws} draws on dask: 1 worker {seconds[1]:.1f} s, 2 workers {seconds[2]:.1f} s: speed-up {seconds[1] / seconds[2]:.2f}x")


if __name__ == "__main__":
    main()
