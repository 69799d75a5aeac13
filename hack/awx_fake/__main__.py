"""Run the AWX fake by hand:  PYTHONPATH=hack python -m awx_fake --project-dir . [--port 8052]

Prints CONTROLLER_HOST and CONTROLLER_OAUTH_TOKEN lines to export, then serves until interrupted.
"""

import argparse
import os
import threading

from .server import FakeAWX


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--project-dir', default=os.getcwd(), help='the checkout the fake lists playbooks from')
    parser.add_argument('--port', type=int, default=0, help='port on 127.0.0.1 (0: a free one)')
    parser.add_argument('--token', help='the OAuth token to accept (default: a random one)')
    args = parser.parse_args()
    awx = FakeAWX(os.path.abspath(args.project_dir), port=args.port, token=args.token).start()
    print('export CONTROLLER_HOST={0} CONTROLLER_OAUTH_TOKEN={1}'.format(awx.url, awx.token), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        awx.stop()


if __name__ == '__main__':
    main()
