"""Entry point: python hack/gke_sim/run.py --kubeconfig PATH [--program-delay 2] [--address-base 127.0.0.]"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # makes the gke_sim package importable

from gke_sim.runner import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
