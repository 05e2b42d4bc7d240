#!/bin/sh
# apt-install PACKAGE...: Debian/Ubuntu packages without recommends, from $APT_MIRROR when it is set
# (e.g. http://mirrors.tuna.tsinghua.edu.cn; empty keeps the base image's sources), lists removed after.
set -eu
if [ -n "${APT_MIRROR:-}" ]; then
    for list in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$list" ] || continue
        sed -i -E "s#https?://[^ /]+/(ubuntu-ports|ubuntu|debian-security|debian)([ /]|\$)#${APT_MIRROR%/}/\\1\\2#g" "$list"
    done
fi
# NVIDIA's CUDA apt repository: nothing here comes from it, and it is slow or unreachable from mainland China.
rm -f /etc/apt/sources.list.d/cuda*.list /etc/apt/sources.list.d/cuda*.sources
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
