"""The entry point the tools share."""

import os
import sys


def run_main(main) -> None:
    """main(), and a quiet exit (code 1, no traceback) when stdout is a pipe closed early (`| head`), as Unix
    tools do: the recipe of Python's signal docs."""
    try:
        try:
            main()
        finally:
            sys.stdout.flush()  # a pipe closed early fails here when the output was buffered
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's own flush would fail again
        sys.exit(1)
