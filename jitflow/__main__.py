"""Command line: `python -m jitflow demo | dump SCRIPT:FUNCTION`."""
from __future__ import annotations

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m jitflow")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run the main job: seed programs and a regression, with timings")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import main as demo_main
        demo_main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
