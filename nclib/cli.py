"""The `nclib` command: ``nclib info``, ``nclib zoo``, and the course tools.

Run ``nclib --help`` or ``nclib COMMAND --help``.
"""
from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _info(args) -> int:
    import nclib
    from nclib.data import cache_dir

    print(nclib.setup(seed=0))
    print(f"cache: {cache_dir()}")
    return 0


def _zoo(args) -> int:
    from nclib import zoo

    if args.action == "list":
        for name, recipe in zoo.RECIPES.items():
            cached = "cached" if zoo.cache_path(name).exists() else "not trained yet"
            print(f"{name:<14} {recipe.description:<44} {cached}")
    elif args.action == "train":
        import nclib

        nclib.setup(seed=0)
        for name in args.names or list(zoo.RECIPES):
            zoo.trained(name, retrain=args.retrain)
            meta = zoo.info(name)
            print(f"{name:<14} test accuracy {100 * meta['test_accuracy']:.2f}%  "
                  f"trained in {meta['train_seconds']} s")
    elif args.action == "clear":
        print(f"removed {zoo.clear()} file(s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nclib", description="Network compression course tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="versions, device, threads and cache folder")
    p.set_defaults(func=_info)
    p = sub.add_parser("zoo", help="list, train or clear the cached trained models")
    p.add_argument("action", choices=["list", "train", "clear"])
    p.add_argument("names", nargs="*", help="models to train (default: all)")
    p.add_argument("--retrain", action="store_true", help="train again even if cached")
    p.set_defaults(func=_zoo)
    for register in _COMMANDS:
        register(sub)
    return parser


_COMMANDS: list = []  # course tools add their sub-commands here (see nclib.course)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"nclib {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
