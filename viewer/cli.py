"""Command line: ``clinical-viewer [PATH]`` opens the GUI; subcommands run headless.

Exit codes: 0 success, 2 bad input (message on stderr), 1 internal error (or, for ``compare``,
a failed parity verdict). Each subcommand's work lives in the module that owns it; this file only
parses arguments and maps errors to exit codes. Heavy modules are imported lazily so that
``clinical-viewer scan`` never imports Qt or torch.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence

__all__ = ["main", "build_parser", "BadInput", "cancel_on_sigterm"]

SUBCOMMANDS = ("gui", "demo", "scan", "convert", "segment", "compare", "model")


class BadInput(Exception):
    """Raised by command handlers for user errors: exit code 2, message on stderr."""


def _lazy(module: str, func: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        import importlib

        return int(getattr(importlib.import_module(module), func)(args) or 0)

    return run


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="clinical-viewer", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging (never logs patient data)")
    sub = p.add_subparsers(dest="command")

    g = sub.add_parser("gui", help="open the viewer (default)")
    g.add_argument("path", nargs="?", help="folder, file, DICOMDIR or zip to open")
    g.set_defaults(func=_lazy("viewer.qt.app", "run_gui"))

    d = sub.add_parser("demo", help="open the viewer on a generated demo chest CT and segment it")
    d.add_argument("--no-segment", action="store_true", help="only open the demo series")
    d.set_defaults(func=_lazy("viewer.qt.app", "run_demo"))

    s = sub.add_parser("scan", help="list studies/series found under PATH (headers only)")
    s.add_argument("path")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=_lazy("viewer.dicom.commands", "cmd_scan"))

    c = sub.add_parser("convert", help="write a series as NIfTI with a correct affine")
    c.add_argument("path")
    c.add_argument("--series", help="SeriesInstanceUID or stack id (default: the only/largest series)")
    c.add_argument("--out", required=True, help="output .nii or .nii.gz")
    c.set_defaults(func=_lazy("viewer.dicom.commands", "cmd_convert"))

    sg = sub.add_parser("segment", help="segment a series (or every series under a folder)")
    sg.add_argument("path")
    sg.add_argument("--series")
    sg.add_argument("--model")
    sg.add_argument("--engine", default="onnx", choices=["onnx", "onnx-int8", "torch"])
    sg.add_argument("--provider", default=None, help="onnxruntime execution provider")
    sg.add_argument("--threads", type=int, default=None)
    sg.add_argument("--force", action="store_true", help="run even when the domain check fails")
    sg.add_argument("--anonymize", action="store_true")
    sg.add_argument("--out", required=True)
    sg.set_defaults(func=_lazy("viewer.segment_cmd", "cmd_segment"))

    cp = sub.add_parser("compare", help="compare engines (PyTorch / ONNX / INT8) on a series")
    cp.add_argument("path")
    cp.add_argument("--series")
    cp.add_argument("--model")
    cp.add_argument("--engines", default="torch,onnx,onnx-int8")
    cp.add_argument("--min-dice-fp32", type=float, help="FP32 parity threshold (default 0.999)")
    cp.add_argument("--min-dice-int8", type=float, help="INT8 agreement threshold (default 0.99)")
    cp.add_argument("--max-flip-fraction", type=float, help="also fail above this flip fraction")
    cp.add_argument("--postprocess", action="store_true", help="compare post-processed masks")
    cp.add_argument("--anonymize", action="store_true")
    cp.add_argument("--out", required=True)
    cp.set_defaults(func=_lazy("viewer.compare_cmd", "cmd_compare"))

    m = sub.add_parser("model", help="model packages: list, train, export, quantize, validate")
    m.add_argument("action", choices=["list", "train", "export", "quantize", "validate"])
    m.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for the action (see --help of each)")
    m.set_defaults(func=_lazy("inference.cli", "cmd_model"))
    return p


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def cancel_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM (a service stop, ``kill``) cancels like Ctrl+C: it raises
    ``KeyboardInterrupt`` in the main thread, so jobs stop and atomic writers remove their
    temporary files instead of the process dying mid-write. The old handler is restored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `clinical-viewer PATH` and bare `clinical-viewer` open the GUI
    if not argv or (argv[0] not in SUBCOMMANDS and not argv[0].startswith("-")):
        argv = ["gui", *argv]
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["gui"])
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command in ("gui", "demo"):
            return args.func(args)
        with cancel_on_sigterm():
            return args.func(args)
    except BadInput as exc:
        print(f"clinical-viewer: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("clinical-viewer: cancelled", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's one place that maps errors to exit codes
        from viewer.errors import is_user_error

        if is_user_error(exc):
            print(f"clinical-viewer: {exc}", file=sys.stderr)
            return 2
        logging.getLogger("viewer.cli").exception("internal error")
        print(f"clinical-viewer: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
