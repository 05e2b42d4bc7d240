# shellcheck shell=bash
# CANN's environment, sourced the way the quay.io/ascend/cann bases' own ENTRYPOINT does it, for the
# service's processes (entrypoint.sh), login shells and `docker exec ... bash` (/etc/profile.d):
#   1. ascend-toolkit/set_env.sh
#   2. on CANN 8.5.1 / 9.0.0: cann-<version>/share/info/ascendnpu-ir/bin/set_env.sh (I2V_CANN_VERSION,
#      set by Dockerfile.cann from CANN_VERSION; the 8.3 bases have no such script)
#   3. nnal/atb/set_env.sh --cxx_abi=${ATB_CXX_ABI:-1}, as Ascend's newer images pass it. Without the flag
#      NNAL runs `python3 -c "import torch"` to find the ABI: the venv's python, so torch and torch_npu
#      would load on every start and every `docker exec`. torch >= 2.7 wheels use the C++11 ABI (1).
# Sourced by bash (the flag is an argument to a sourced script). I2V_ASCEND_ROOT moves the tree (tests).
# Each script is sourced with exactly its own arguments: a bare `. file` inside the entrypoint would hand
# it the service's command line ($@) as well.
_i2v_source() {
    local script=$1
    shift
    # shellcheck disable=SC1090
    if [ -f "$script" ]; then . "$script" "$@"; fi
}
_i2v_ascend=${I2V_ASCEND_ROOT:-/usr/local/Ascend}
_i2v_source "$_i2v_ascend/ascend-toolkit/set_env.sh"
if [ -n "${I2V_CANN_VERSION:-}" ]; then
    _i2v_source "$_i2v_ascend/cann-${I2V_CANN_VERSION}/share/info/ascendnpu-ir/bin/set_env.sh"
fi
_i2v_source "$_i2v_ascend/nnal/atb/set_env.sh" --cxx_abi="${ATB_CXX_ABI:-1}"
unset -f _i2v_source
unset _i2v_ascend
