"""``python -m ferlib.book``: the book runner (:mod:`ferlib.book.runner`), as ``ferlib-book``."""
import sys

from ferlib.book.runner import main

# guarded: the runner's worker processes (--jobs) are spawned, and spawning imports this module
if __name__ == "__main__":
    sys.exit(main())
