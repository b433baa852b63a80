"""The ``availability`` command: everything a user runs.

Subcommands live in ``app/commands/``; settings are loaded and validated once here,
so a bad value stops any command with a clear message.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from app.commands import COMMAND_MODULES
from app.settings import SettingsError, load_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="availability",
        description="store-availability: in-store availability badges that promise only with margin.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = {k: getattr(args, k, None) for k in getattr(args, "settings_overrides", ())}
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        print(f"availability: bad setting: {exc}", file=sys.stderr)
        return 2
    from app.logs import configure_logging

    configure_logging(settings.log_format, settings.log_level)
    rc: int = args.func(args, settings)
    return rc


if __name__ == "__main__":
    sys.exit(main())
