"""python -m hack.gcp_fake --port 0 --token T (from the repository root)."""

import sys

from .server import main

sys.exit(main())
