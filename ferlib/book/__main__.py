"""``python -m ferlib.book``: the book runner (:mod:`ferlib.book.runner`), as ``ferlib-book``."""
import sys

from ferlib.book.runner import main

sys.exit(main())
