"""Build-time check: an HTTPS request through huggingface_hub's own HTTP client succeeds.

huggingface_hub (i2v fetch) verifies TLS against the system CA store only, so an image without
`ca-certificates` fails every download with a certificate error. The request goes to the URL given
(the package index the build already uses, the one host a builder always reaches).
"""

from __future__ import annotations

import sys


def main(url: str) -> int:
    from huggingface_hub.utils import get_session

    try:
        url = url.rstrip("/") + "/"      # an index URL; /simple would answer with a redirect
        response = get_session().get(url, timeout=30)
    except Exception as exc:  # noqa: BLE001 - the message is the point
        sys.exit(f"HTTPS GET {url} through huggingface_hub failed: {type(exc).__name__}: {exc}\n"
                 "(is ca-certificates installed? huggingface_hub reads only the system CA store)")
    if response.status_code >= 400:
        sys.exit(f"HTTPS GET {url} answered {response.status_code}")
    print(f"https: GET {url} -> {response.status_code} through huggingface_hub's client")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
