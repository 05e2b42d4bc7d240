# CANN's environment for login and interactive bash shells (`docker exec -it ... bash`), the same
# scripts in the same order as the entrypoint (cann-env.sh); the entrypoint does it for the service.
if [ -n "${BASH_VERSION:-}" ] && [ -f /usr/local/lib/i2v/cann-env.sh ]; then
    # shellcheck disable=SC1091
    . /usr/local/lib/i2v/cann-env.sh
fi
