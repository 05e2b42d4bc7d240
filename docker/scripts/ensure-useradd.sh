#!/bin/sh
# ensure-useradd: groupadd and useradd exist afterwards. The CANN openEuler bases' final stage has no
# `shadow` package (no groupadd / useradd); Ubuntu bases have Debian's `passwd`. Installs what is missing.
set -eu
if command -v groupadd > /dev/null && command -v useradd > /dev/null; then exit 0; fi
if command -v dnf > /dev/null; then
    dnf install -y shadow && dnf clean all
elif command -v yum > /dev/null; then
    yum install -y shadow && yum clean all
elif command -v apt-get > /dev/null; then
    "$(dirname "$0")/apt-install" passwd
else
    echo "ensure-useradd: no groupadd/useradd and no dnf, yum or apt-get to install them" >&2
    exit 1
fi
command -v groupadd > /dev/null && command -v useradd > /dev/null
