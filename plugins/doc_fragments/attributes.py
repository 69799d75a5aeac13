# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reusable ``attributes`` documentation for the modules of this collection.

Use the base fragment for the descriptions and one ``support`` fragment:

.. code-block:: yaml

    extends_documentation_fragment:
      - gke_ai.inference_gateway.attributes
      - gke_ai.inference_gateway.attributes.read_only      # or .full_support, ...
"""

from __future__ import annotations


class ModuleDocFragment(object):

    # Descriptions of the attributes (no support levels).
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: posix
"""

    # Modules that only read cluster state and report (waiters, info modules).
    READ_ONLY = r"""
attributes:
  check_mode:
    support: full
    details:
      - The module never changes anything. In check mode it returns a read-only snapshot of the same
        report instead of waiting.
  diff_mode:
    support: none
"""

    # Modules that change state and support both check and diff mode fully.
    FULL_SUPPORT = r"""
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

    # Modules that change state, support check mode but return no diff.
    CHECK_MODE_ONLY = r"""
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

    # Modules that change nothing in the cluster or the cloud and write only local files (load tests, reports).
    LOCAL_FILES = r"""
attributes:
  check_mode:
    support: full
    details:
      - In check mode the module validates its input and returns what it would run or write, and sends and
        writes nothing.
  diff_mode:
    support: none
"""
