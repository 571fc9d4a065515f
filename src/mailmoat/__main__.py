"""``python -m mailmoat``."""

import sys

from mailmoat.cli import main

sys.exit(main())
