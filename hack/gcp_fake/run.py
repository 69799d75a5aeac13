"""Entry point: python hack/gcp_fake/run.py --port 0 --token T [--kubeconfig K] [--service-account-file F]"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # makes the gcp_fake package importable

from gcp_fake.server import main  # noqa: E402  pylint: disable=wrong-import-position

if __name__ == "__main__":
    sys.exit(main())
