"""``python -m eventgraph``: the same command line as the ``eventgraph`` script."""

import sys

from .cli import main

sys.exit(main())
