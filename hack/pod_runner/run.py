"""Entry point: python hack/pod_runner/run.py --kubeconfig PATH --env-id ID --state-dir DIR ... (see --help)"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # makes the pod_runner package importable

from pod_runner.runner import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
