"""``distilora`` command line: a thin layer over the Python API, one module per sub-command."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from distilora.run_dir import RunLocked

# Each module defines ``HELP``, ``add_arguments(parser)`` and ``main(args) -> int``.
COMMANDS = ("run", "tune", "predict", "score", "report", "check", "serve", "export")


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Show every option's default (taken from the config dataclasses), unless it is unset or already said."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (not action.option_strings or action.default in (None, False, argparse.SUPPRESS)
                or "default" in text):
            return text
        return f"{text} (default: %(default)s)".strip()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="distilora",
        description="Compress a BERT hate-speech classifier by layer-selected distillation and by LoRA, and compare.",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and the final table")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"distilora.cli.{name}")
        command = sub.add_parser(name, help=module.HELP, description=module.HELP,
                                 formatter_class=DefaultsHelpFormatter)
        module.add_arguments(command)
        command.set_defaults(handler=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    from distilora import distributed

    args = build_parser().parse_args(argv)
    quiet = args.quiet or not distributed.is_main_process()  # torchrun: one process speaks for all
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("\nInterrupted. Finished stages are kept; run the same command again to resume.", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, PermissionError, RunLocked) as error:
        print(f"distilora {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a full disk, a vanished directory: say so in one line, keep finished stages
        print(f"distilora {args.command}: error: {error}. Finished stages are kept; fix this and run the same "
              "command again to resume.", file=sys.stderr)
        return 2


