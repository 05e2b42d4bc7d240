# CANN's environment for login and interactive bash shells (`docker exec -it ... bash`), as the
# quay.io/ascend/cann base sets it up; the entrypoint does the same for the service's processes.
if [ -n "${BASH_VERSION:-}" ]; then
    for script in /usr/local/Ascend/ascend-toolkit/set_env.sh /usr/local/Ascend/nnal/atb/set_env.sh; do
        # shellcheck disable=SC1090
        if [ -f "$script" ]; then . "$script"; fi
    done
fi
