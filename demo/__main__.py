"""``python -m demo`` (what ``make demo`` runs): see ``demo.runner``."""

import sys

from demo.runner import main

if __name__ == "__main__":
    sys.exit(main())
