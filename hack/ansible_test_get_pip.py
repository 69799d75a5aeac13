"""Stand-in for the get-pip bootstrap script ansible-test downloads from ci-files.testing.ansible.com.

That host is unreachable here, so hack/sanity.sh puts this file where ansible-test caches the
script. It does the same job with what is reachable: ensurepip, then pip from PyPI at the
version ansible-test asked for. get-pip's own flags (--no-setuptools, --no-wheel) are dropped.
"""

import ensurepip
import os
import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

ensurepip.bootstrap(upgrade=True)
# ensurepip points PIP_CONFIG_FILE at /dev/null for its own run; the real install must see the
# machine's pip configuration (a CA bundle, an index).
os.environ.pop("PIP_CONFIG_FILE", None)
args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *args]))
