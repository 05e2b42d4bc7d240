#!/opt/venv/bin/python
"""Container healthcheck: exit 0 when `GET /health/ready` answers 200 (a worker has its model loaded).

Run by Docker's HEALTHCHECK and compose; talks to 127.0.0.1 directly, never through a proxy from the
environment. Port from I2V_PORT (default 8000).
"""

import os
import sys
import urllib.error
import urllib.request

url = f"http://127.0.0.1:{os.environ.get('I2V_PORT', '8000')}/health/ready"
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(url, timeout=float(os.environ.get("I2V_HEALTH_TIMEOUT_S", "4"))) as response:
        sys.exit(0 if response.status == 200 else 1)
except (urllib.error.URLError, OSError) as exc:
    print(f"not ready: {url}: {exc}", file=sys.stderr)
    sys.exit(1)
