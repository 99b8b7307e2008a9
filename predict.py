"""Container entry point: ``genre predict`` with the harness's defaults (/input -> /output).

The organizers run the image with no arguments; ``GENRE_OUTPUT_MODE`` (full|ranking) and
``GENRE_METHOD`` override the defaults without a command line.
"""

import argparse
import logging
import os
import sys

from genre.allocator import keep_freed_memory
from genre.commands.predict import EXAMPLE, add_arguments, run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__ + "\n" + EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, input_default="/input", output_default="/output")
    parser.set_defaults(output_mode=os.environ.get("GENRE_OUTPUT_MODE", "full"), method=os.environ.get("GENRE_METHOD", "genre"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    keep_freed_memory()
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
