#!/bin/bash
# The images' entrypoint (under dumb-init): source CANN's environment scripts where they exist, as the
# quay.io/ascend/cann base's own ENTRYPOINT does, then run the command. A no-op on the CUDA and CPU images.
# I2V_SET_ENV overrides the list (space separated).
for script in ${I2V_SET_ENV:-/usr/local/Ascend/ascend-toolkit/set_env.sh /usr/local/Ascend/nnal/atb/set_env.sh}; do
    # shellcheck disable=SC1090  # CANN's scripts, present only in the CANN image
    if [ -f "$script" ]; then source "$script"; fi
done
exec "$@"
