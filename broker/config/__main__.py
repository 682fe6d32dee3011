"""`python -m broker.config --markdown` prints docs/configuration.md."""

import argparse
import sys

from broker.config.markdown import configuration_markdown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m broker.config")
    parser.add_argument("--markdown", action="store_true",
                        help="print the configuration reference (docs/configuration.md)")
    args = parser.parse_args(argv)
    if not args.markdown:
        parser.print_help()
        return 2
    sys.stdout.write(configuration_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
