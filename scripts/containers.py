#!/usr/bin/env python3
"""The project's container checks (scripts/container_checks/): `make containers`, or CI=true `make test`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from container_checks.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
