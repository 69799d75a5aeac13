"""A gcloud configuration directory that talks to the GCP fake only (CLOUDSDK_CONFIG).

    python hack/gcp_fake/gcloud_config.py DIR --endpoint http://127.0.0.1:PORT --token-file F [--project P]
    export CLOUDSDK_CONFIG=DIR    # then: gcloud container node-pools list --cluster local-cluster --location us-central1

The properties are written to DIR/configurations/config_default, so that every gcloud process that sees
CLOUDSDK_CONFIG (also the one gke-gcloud-auth-plugin starts for kubectl) uses them:

* api_endpoint_overrides of the four services point at the fake (compute with Google's /compute/v1/ path shape);
* the access token comes from a file (auth/access_token_file): no account, no OAuth round trip;
* no usage reporting, no update check, no survey, no prompts;
* no GCE metadata server probe: core/check_gce_metadata off, and metrics/environment set, because gcloud otherwise
  resolves metadata.google.internal on its first run to name its environment in the user agent.

What else gcloud reaches is up to the command: flags such as --enable-image-streaming call other services. The
test suite (tests/integration/test_gcloud_walkthrough.py) checks every run's connections.
"""

from __future__ import annotations

import argparse
import configparser
import sys
from pathlib import Path

SERVICE_PATHS = {
    "container": "container/",
    "compute": "compute/compute/v1/",  # gcloud appends resource paths below compute/v1/
    "cloudresourcemanager": "cloudresourcemanager/",
    "certificatemanager": "certificatemanager/",
}


def properties(endpoint: str, token_file: str, project: str = "local-project") -> dict:
    base = endpoint.rstrip("/") + "/"
    return {
        "core": {"project": project, "disable_usage_reporting": "true", "check_gce_metadata": "false",
                 "disable_prompts": "true"},
        "auth": {"access_token_file": token_file},
        "component_manager": {"disable_update_check": "true"},
        "survey": {"disable_prompts": "true"},
        "metrics": {"environment": "gke-ai-infgw-local"},
        "api_endpoint_overrides": {service: base + path for service, path in SERVICE_PATHS.items()},
    }


def write(config_dir: Path, endpoint: str, token_file: str, project: str = "local-project") -> Path:
    """Write the configuration directory (created if needed); returns it."""
    config_dir = Path(config_dir)
    (config_dir / "configurations").mkdir(parents=True, exist_ok=True)
    parser = configparser.ConfigParser()
    parser.read_dict(properties(endpoint, token_file, project))
    with open(config_dir / "configurations" / "config_default", "w", encoding="utf-8") as f:
        parser.write(f)
    (config_dir / "active_config").write_text("default", encoding="utf-8")
    return config_dir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config_dir")
    parser.add_argument("--endpoint", required=True, help="the fake's base URL, http://127.0.0.1:PORT")
    parser.add_argument("--token-file", required=True, help="a file holding the fake's access token")
    parser.add_argument("--project", default="local-project")
    args = parser.parse_args(argv)
    out = write(Path(args.config_dir), args.endpoint, str(Path(args.token_file).resolve()), args.project)
    print(f"export CLOUDSDK_CONFIG={out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
