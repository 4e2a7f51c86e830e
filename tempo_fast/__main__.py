"""``python -m tempo_fast``: same as the ``tempo-fast`` command."""

import sys

from tempo_fast.cli import main

sys.exit(main())
