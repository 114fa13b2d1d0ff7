"""``python -m ferlib.book.scoreboard [--records book/records/cpu] [--out book/scoreboard.md]``."""
import argparse

from . import BOOK_RECORDS, write_page

parser = argparse.ArgumentParser(description="Write the reproduction scoreboard page from results records.")
parser.add_argument("--records", default=BOOK_RECORDS,
                    help="the records folder the page reads (default: %(default)s)")
parser.add_argument("--out", default="book/scoreboard.md")
args = parser.parse_args()
try:
    print(f"wrote {write_page(args.records, args.out)}")
except (OSError, ValueError) as exc:  # a missing or empty records folder, a broken record
    parser.exit(2, f"python -m ferlib.book.scoreboard: error: {exc}\n")
