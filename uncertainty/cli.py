"""Command-line interface: ``urbanmine run``, ``report`` and ``export-ratios``.

Exit status: 0 on success, 2 on invalid input or arguments (a message naming
the file and location, no traceback). File-system errors that the user can
fix (disk full, folder not writable) also exit 2. An interrupted run exits
130, and an unexpected error exits 1 (traceback only with ``--verbose``).
"""

from __future__ import annotations

import argparse
import datetime
import errno
import logging
import os
import sys
import traceback
import warnings
from pathlib import Path

from uncertainty.errors import InputError

logger = logging.getLogger("uncertainty")

#: Folder that contains models/, data/ and reports/ in a source checkout.
PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BOUNDARY = "jp"
DEFAULT_DRAWS = 2000
DEFAULT_SEED = 1

#: Errors of the file system that the user can fix (a full disk, a read-only
#: file system, a file where a folder belongs). They exit with status 2 like
#: invalid input, not 1 like a bug. Missing files, permissions and existing
#: results have their own OSError subclasses and are handled separately.
# NOTE: netCDF4 may report a full disk as its own HDF error instead of ENOSPC;
# such a failure still leaves no folder behind but exits 1 as an internal error.
FILE_SYSTEM_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.ENOTDIR, errno.EISDIR})


def _whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _whole_number(text, 1)


def _sobol_size(text: str) -> int:
    # Below 256 the smallest of the three levels (n/4) has under 64 draws,
    # too few for bootstrap intervals of the indices.
    return _whole_number(text, 256)


def _seed(text: str) -> int:
    return _whole_number(text, 0)


def _metal_list(text: str) -> list[str]:
    symbols = [part.strip() for part in text.split(",") if part.strip()]
    if not symbols:
        raise argparse.ArgumentTypeError(f"expected comma-separated symbols such as Au,Ag, got {text!r}")
    return symbols


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``urbanmine``."""
    parser = argparse.ArgumentParser(
        prog="urbanmine",
        description="Monte Carlo estimate of a country's urban-mine metal stock.",
    )
    parser.add_argument("--verbose", action="store_true", help="log per metal and show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="draw the stocks and write a result folder")
    run.add_argument("--boundary", default=DEFAULT_BOUNDARY, help="boundary folder name (default: jp)")
    run.add_argument("--models", type=Path, help="model folder (default: models/BOUNDARY)")
    run.add_argument(
        "--data",
        type=Path,
        action="append",
        help="data folder; repeat to add folders of extra observations (default: the shipped data/)",
    )
    run.add_argument("--draws", type=_positive_int, default=DEFAULT_DRAWS, help="number of Monte Carlo draws (default: 2000)")
    run.add_argument("--seed", type=_seed, default=DEFAULT_SEED, help="seed of the random streams (default: 1)")
    run.add_argument("--metals", type=_metal_list, help="comma-separated symbols (default: every model)")
    run.add_argument("--out", type=Path, help="result folder (default: reports/BOUNDARY-TIMESTAMP)")
    run.add_argument("--force", action="store_true", help="replace a result already in --out")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.add_argument(
        "--chunk",
        type=_positive_int,
        help="run in chunks of this many draws (multiples of 1024 run fastest) and keep summaries only: "
        "exact intervals at the reference year, histogram quantiles for other years",
    )
    run.add_argument("--dask", action="store_true", help="with --chunk: run chunks on dask's local threads")
    run.add_argument("--scheduler", help="with --chunk: address of a dask.distributed scheduler")

    report = commands.add_parser(
        "report", help="redraw tables and figures from a saved stocks.nc, or chunked.nc of a chunked run"
    )
    report.add_argument("folder", type=Path, help="result folder written by 'urbanmine run'")
    report.add_argument("--data", type=Path, help="data folder with reference/ (default: the shipped data/)")
    report.add_argument("--boundary", help="boundary folder name (default: the one the run used)")

    sensitivity = commands.add_parser(
        "sensitivity", help="grouped Sobol indices of each metal's reference-year stock"
    )
    sensitivity.add_argument("--boundary", default=DEFAULT_BOUNDARY, help="boundary folder name (default: jp)")
    sensitivity.add_argument("--models", type=Path, help="model folder (default: models/BOUNDARY)")
    sensitivity.add_argument("--data", type=Path, action="append", help="data folder; may repeat (default: data/)")
    sensitivity.add_argument("--metals", type=_metal_list, help="comma-separated symbols (default: every model)")
    sensitivity.add_argument(
        "--n", type=_sobol_size, default=4096,
        help="largest base sample size, at least 256; indices are also given at n/4 and n/2 (default: 4096)",
    )
    sensitivity.add_argument("--bootstrap", type=_positive_int, default=500, help="bootstrap replicates (default: 500)")
    sensitivity.add_argument("--seed", type=_seed, default=DEFAULT_SEED, help="seed of sample A (default: 1)")
    sensitivity.add_argument("--out", type=Path, required=True, help="result folder for sobol.csv and convergence.csv")
    sensitivity.add_argument("--force", action="store_true", help="replace a result already in --out")

    ratios = commands.add_parser("export-ratios", help="export ratios of an input-output table as CSV")
    ratios.add_argument("--table", default=None, help="table name (default: the 2005 188-sector table)")
    ratios.add_argument("--inverse", choices=("plain", "domestic"), help="Leontief form (default: both)")
    ratios.add_argument(
        "--data", type=Path, help="folder of input-output tables (default: data/jp/io, or data/us/io for wiod2013_usa)"
    )
    ratios.add_argument("--out", type=Path, help="CSV file to write (default: standard output)")

    compare = commands.add_parser("compare", help="compare a run with published estimates")
    compare.add_argument("folder", type=Path, help="result folder written by 'urbanmine run'")
    compare.add_argument(
        "--update",
        help="comma-separated reference ids to update the draws on by importance sampling (default: none)",
    )
    compare.add_argument("--data", type=Path, help="data folder with reference/ (default: the shipped data/)")
    compare.add_argument("--out", type=Path, help="folder for the comparison (default: FOLDER/agreement)")

    imports = commands.add_parser("import", help="convert trade downloads into observation files")
    import_sources = imports.add_subparsers(dest="import_source", required=True)
    comtrade = import_sources.add_parser("comtrade", help="import UN Comtrade CSV downloads (API column names)")
    comtrade.add_argument("files", type=Path, nargs="+", metavar="FILE", help="Comtrade CSV download")
    comtrade.add_argument("--out", type=Path, required=True, help="data folder to write; pass it to 'urbanmine run --data'")
    comtrade.add_argument(
        "--boundary",
        help="subfolder of --out for the observations (default: the reporter's ISO3 code in lower case, "
        "e.g. usa; use jp for Japan's shipped boundary)",
    )
    comtrade.add_argument("--hs-table", type=Path, help="HS code table (default: the shipped data/hs_codes.csv)")

    # Accept --verbose after the command name too. SUPPRESS keeps a --verbose
    # given before the command when it is not repeated after it.
    for command in commands.choices.values():
        command.add_argument(
            "--verbose", action="store_true", default=argparse.SUPPRESS, help="log per metal and show tracebacks"
        )
    return parser


def _run(args: argparse.Namespace) -> int:
    from uncertainty.data import load_data
    from uncertainty.report import check_output_folder, write_result
    from uncertainty.simulate import log_run, simulate
    from uncertainty.spec import load_models

    if args.dask and args.scheduler is not None:
        raise InputError.single("--dask", "argument", "use either --dask (local threads) or --scheduler ADDRESS, not both")
    if (args.dask or args.scheduler is not None) and args.chunk is None:
        option = "--dask" if args.dask else "--scheduler"
        raise InputError.single(
            option, "argument", "needs --chunk N, because it runs the draws in chunks (for example --chunk 65536)"
        )
    data_dir = args.data or [PROJECT_ROOT / "data"]
    model_dir = args.models or PROJECT_ROOT / "models" / args.boundary
    models = load_models(model_dir)
    if args.metals:
        try:
            models = models.select(args.metals)
        except ValueError as exc:
            raise InputError.single(str(model_dir), "--metals", str(exc)) from exc
    data = load_data(data_dir, args.boundary)
    from uncertainty.validate import check_models_against_data

    check_models_against_data(models, data)

    out = args.out
    if out is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = PROJECT_ROOT / "reports" / f"{args.boundary}-{stamp}"
    chunked = args.chunk is not None
    if chunked:
        from uncertainty.chunked_report import CHUNKED_MARKER

        check_output_folder(out, args.force, marker=CHUNKED_MARKER)
    else:
        check_output_folder(out, args.force)
    logger.info("running %d metals x %d draws, seed %d", len(models.metals), args.draws, args.seed)
    if chunked:
        return _run_chunked(args, models, data, out)
    dataset = simulate(models, data, args.draws, args.seed, progress=not args.no_progress)
    log_run(dataset)
    comparison = write_result(dataset, data.reference, out, force=args.force)

    _print_comparison(comparison)
    print(f"\nwrote {out}")
    return 0


def _print_comparison(comparison) -> None:
    """Print the headline columns of a comparison table, leaving out an empty NIMS column."""
    columns = ["metal", "median", "eti95_lower", "eti95_upper", "nims_stock", "observed_share"]
    if comparison["nims_stock"].isna().all():
        columns.remove("nims_stock")
    print(comparison[columns].to_string(index=False, float_format=lambda v: f"{v:.3g}"))


def _run_chunked(args: argparse.Namespace, models, data, out: Path) -> int:
    from uncertainty.chunked import run_chunked
    from uncertainty.chunked_report import write_chunked_result
    from uncertainty.simulate import BLOCK_SIZE

    chunk = args.chunk or 64 * BLOCK_SIZE
    try:
        dataset = run_chunked(
            models, data, args.draws, args.seed, chunk, scheduler=args.scheduler, use_dask=args.dask
        )
    except InputError:
        raise
    except ValueError as exc:
        raise InputError.single("--chunk", "argument", str(exc)) from exc
    comparison = write_chunked_result(dataset, data.reference, out, force=args.force)
    _print_comparison(comparison)
    print(f"\nwrote {out}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from uncertainty.data import load_data
    from uncertainty.report import open_result, rewrite_tables

    dataset = open_result(args.folder)
    boundary = args.boundary or dataset.attrs.get("boundary_key", DEFAULT_BOUNDARY)
    data = load_data(args.data or PROJECT_ROOT / "data", boundary)
    rewrite_tables(dataset, data.reference, args.folder)
    print(f"rewrote tables and figures in {args.folder}")
    return 0


def _sensitivity(args: argparse.Namespace) -> int:
    import pandas as pd

    from uncertainty.data import load_data
    from uncertainty.report import atomic_folder, check_output_folder
    from uncertainty.sobol import GroupedSobol, sobol_table, top_groups_stable
    from uncertainty.spec import load_models
    from uncertainty.validate import check_models_against_data

    model_dir = args.models or PROJECT_ROOT / "models" / args.boundary
    models = load_models(model_dir)
    if args.metals:
        try:
            models = models.select(args.metals)
        except ValueError as exc:
            raise InputError.single(str(model_dir), "--metals", str(exc)) from exc
    data = load_data(args.data or [PROJECT_ROOT / "data"], args.boundary)
    check_models_against_data(models, data)
    check_output_folder(args.out, args.force, marker="sobol.csv")

    design = GroupedSobol(models, data, n=args.n, seed=args.seed)
    results, stability = [], []
    sizes = sorted({max(2, args.n // 4), max(2, args.n // 2), args.n})
    for model in models.metals:
        logger.info("Sobol design for %s", model.metal)
        design.evaluate(model.metal)
        per_size = [design.indices(model.metal, n=size, n_bootstrap=args.bootstrap) for size in sizes]
        results.extend(per_size)
        stability.append({"metal": model.metal, "sizes": ";".join(map(str, sizes)),
                          "top3_stable": top_groups_stable(per_size, 3)})
    with atomic_folder(args.out, args.force, marker="sobol.csv") as staging:
        sobol_table(results).to_csv(staging / "sobol.csv", index=False, float_format="%.4g")
        pd.DataFrame(stability).to_csv(staging / "convergence.csv", index=False)
    print(f"wrote {args.out}")
    return 0


def _export_ratios(args: argparse.Namespace) -> int:
    from uncertainty import io_tables

    kwargs = {"inverse": args.inverse}
    if args.table is not None:
        kwargs["table"] = args.table
    if args.data is not None:
        kwargs["data_dir"] = args.data
    elif args.table is not None and args.table.endswith("_usa"):
        kwargs["data_dir"] = PROJECT_ROOT / "data" / "us" / "io"
    try:
        frame = io_tables.export_ratios_frame(**kwargs)
    except ValueError as exc:
        raise InputError.single("--table/--inverse", "argument", str(exc)) from exc
    if args.out is None:
        frame.to_csv(sys.stdout, index=False, float_format="%.6g")
    else:
        frame.to_csv(args.out, index=False, float_format="%.6g")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from uncertainty.agreement import write_comparison
    from uncertainty.report import open_result

    update_ids = [part.strip() for part in (args.update or "").split(",") if part.strip()]
    dataset = open_result(args.folder)
    out = args.out or args.folder / "agreement"
    result = write_comparison(dataset, args.data or PROJECT_ROOT / "data", out, update_ids, run_dir=args.folder)
    columns = ["metal", "median", "eti95_lower", "eti95_upper", "significant_figures", "nims_stock", "nims_inside"]
    print(result.verdict[columns].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    if not result.updates.empty:
        print()
        print(result.updates.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    if "quantiles_from" in result.agreement:
        sources = result.agreement["quantiles_from"].fillna("")
        blocked = result.agreement["status"].str.startswith("not compared")
        print(
            f"\nchunked run: {(sources == 'draws').sum()} references compared with every draw, "
            f"{(sources == 'histogram').sum()} with histogram quantiles, and {blocked.sum()} that a "
            "chunked run cannot compare (the status column of agreement.csv says why)"
        )
    print(f"\nwrote {out}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from uncertainty import comtrade

    result = comtrade.import_files(args.files, args.hs_table or comtrade.DEFAULT_HS_TABLE)
    print(comtrade.format_summary(result))
    for path in comtrade.write_import(result, args.out, args.boundary):
        print(f"wrote {path}")
    return 0


COMMANDS = {
    "run": _run,
    "report": _report,
    "sensitivity": _sensitivity,
    "export-ratios": _export_ratios,
    "compare": _compare,
    "import": _import,
}


def main(argv: list[str] | None = None) -> int:
    """Run ``urbanmine`` with ``argv`` and return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # Statistical caveats raised with warnings.warn reach the user as one
    # log line each, without the source line that Python's default shows.
    logging.captureWarnings(True)
    warnings.formatwarning = _format_warning
    try:
        return COMMANDS[args.command](args)
    except BrokenPipeError:
        # A reader such as `head` closed the pipe: stop quietly, as Unix tools do.
        sys.stdout = open(os.devnull, "w")
        return 0
    except InputError as exc:
        print(f"urbanmine: invalid input ({len(exc.problems)} problem(s)):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except FileExistsError as exc:
        print(f"urbanmine: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, PermissionError) as exc:
        print(f"urbanmine: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in FILE_SYSTEM_ERRNOS:
            return _report_internal_error(exc, args.verbose)
        print(f"urbanmine: {_describe_file_system_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("urbanmine: interrupted; no result was written", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001  (the last resort of a command-line tool)
        return _report_internal_error(exc, args.verbose)


def _format_warning(message, category, filename, lineno, line=None) -> str:
    return f"{category.__name__}: {message}"


def _describe_file_system_error(exc: OSError) -> str:
    """Return a one-line description of a file-system error, naming the file if known."""
    where = f": {exc.filename}" if exc.filename else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"the disk is full ({exc.strerror}){where}; free some space or choose another --out folder"
    return f"{exc.strerror or exc}{where}"


def _report_internal_error(exc: BaseException, verbose: bool) -> int:
    """Print an unexpected error on one line, after the traceback under --verbose, and return 1."""
    first_line = str(exc).splitlines()[0] if str(exc) else ""
    if verbose:
        traceback.print_exc()
        print(f"urbanmine: internal error: {type(exc).__name__}: {first_line}", file=sys.stderr)
    else:
        print(
            f"urbanmine: internal error: {type(exc).__name__}: {first_line} "
            "(run again with --verbose for the traceback)",
            file=sys.stderr,
        )
    return 1


if __name__ == "__main__":
    sys.exit(main())
