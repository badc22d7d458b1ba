"""The `nclib` command: ``nclib info``, ``nclib zoo``, the course tools, and the chapters'.

Chapters register their commands with `nclib.course.commands.command` and their zoo recipes
with `nclib.zoo.register`; the parser imports every chapter first, so both are found here.
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
        width = max(map(len, zoo.RECIPES), default=0)
        for name, recipe in zoo.RECIPES.items():  # with the chapters' (see build_parser)
            cached = "cached" if zoo.cache_path(name).exists() else "not trained yet"
            print(f"{name:<{width}}  {cached:<15}  {recipe.description}")
    elif args.action == "train":
        import nclib

        nclib.setup(seed=0)
        for name in args.names or list(zoo.RECIPES):
            zoo.trained(name, retrain=args.retrain)
            meta = zoo.info(name)
            score = (f"test accuracy {100 * meta['test_accuracy']:.2f}%  "
                     if "test_accuracy" in meta else "")
            print(f"{name:<14} {score}trained in {meta['train_seconds']} s")
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
    p = sub.add_parser("exercises", help="start your own copy of the exercises; build or check exercises/",
                       description="start [DIR]: copy the released exercises into DIR (default: "
                                   "my-exercises beside the exercises folder), never overwriting a "
                                   "file there; work in DIR, since `build` and a `git pull` rewrite "
                                   "exercises/. build: write exercises/ from solutions/. check: fail "
                                   "if exercises/ is not what solutions/ builds.")
    p.add_argument("action", choices=["start", "build", "check"])
    p.add_argument("folder", nargs="?", metavar="DIR",
                   help="start only: the folder to copy the exercises into (default: my-exercises "
                        "beside --exercises)")
    p.add_argument("--solutions", default="solutions", help="default: %(default)s")
    p.add_argument("--exercises", default="exercises", help="default: %(default)s")
    p.set_defaults(func=_exercises)
    p = sub.add_parser("run", help="execute notebooks in place, saving their outputs")
    p.add_argument("notebooks", nargs="+")
    p.add_argument("--timeout", type=float, default=600, help="seconds a cell may run")
    p.set_defaults(func=_run)
    from nclib.course import commands, discover, grade, reproduce

    grade.add_parser(sub)
    reproduce.add_parser(sub)
    discover.import_all()  # each chapter registers its commands and zoo recipes
    for cmd in commands.COMMANDS.values():
        if cmd.name in sub.choices:
            raise ValueError(f"chapter command {cmd.name!r} ({cmd.run.__module__}) has the name "
                             f"of the built-in `nclib {cmd.name}`; choose another name")
        p = sub.add_parser(cmd.name, help=cmd.help)
        if cmd.add_arguments is not None:
            cmd.add_arguments(p)
        p.set_defaults(func=cmd.run)
    return parser


def _exercises(args) -> int:
    from nclib.course import build

    if args.action != "start" and args.folder is not None:
        raise ValueError(f"DIR={args.folder!r}: only `nclib exercises start` takes a folder; "
                         f"`{args.action}` takes none (its folders are --solutions and --exercises)")
    if args.action == "start":
        folder, copied, kept = build.start(args.exercises, args.folder)
        print(f"copied {len(copied)} exercise(s) into {folder}/" + "".join(f"\n  {c}" for c in copied))
        if kept:
            print(f"kept {len(kept)} file(s) that already exist there (never overwritten):"
                  + "".join(f"\n  {k}" for k in kept))
        print(f"work in {folder}/ (open it in JupyterLab, or run `jupyter lab {folder}`): "
              "`nclib exercises build` and `git pull` rewrite exercises/")
        return 0
    if args.action == "build":
        changed = build.build(args.solutions, args.exercises)
        print(f"wrote {len(changed)} notebook(s)" + "".join(f"\n  {c}" for c in changed))
        return 0
    problems = build.stale(args.solutions, args.exercises)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print("run `nclib exercises build` (or `make exercises`) and commit the result",
              file=sys.stderr)
        return 1
    print("exercises/ is up to date")
    return 0


def _run(args) -> int:
    import time
    from pathlib import Path

    import nbformat
    from nbclient import NotebookClient

    for path in map(Path, args.notebooks):
        if not path.exists():
            raise FileNotFoundError(f"no such notebook: {path}")
        nb = nbformat.read(path, as_version=4)
        t0 = time.perf_counter()
        NotebookClient(nb, timeout=args.timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        nbformat.write(nb, path)
        print(f"{path}: ran in {time.perf_counter() - t0:.1f} s, outputs saved")
    return 0


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
