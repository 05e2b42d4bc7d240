#!/bin/bash
# The images' entrypoint (under dumb-init): in the CANN image, source CANN's environment the way the
# quay.io/ascend/cann base's own ENTRYPOINT does (cann-env.sh; I2V_CANN_ENV names another file), then run
# the command. A no-op on the CUDA and CPU images, which carry no cann-env.sh.
env_script=${I2V_CANN_ENV:-/usr/local/lib/i2v/cann-env.sh}
# shellcheck disable=SC1090
if [ -f "$env_script" ]; then source "$env_script"; fi
unset env_script
exec "$@"
