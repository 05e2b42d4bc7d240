"""The project's container checks: lint, compose config, real builds, a real `compose up`, a bundle round trip.

    make containers          # as root, on a Debian bookworm machine like CI's; CI=true runs it from `make test`

No registry is reachable on such a machine and no Docker engine runs, so the checks
  1. lint both Dockerfiles (hadolint), validate compose.yaml for every profile with and without the files
     provision writes for recorded hosts (tests/golden/), and read docker-bake.hcl (static.py);
  2. start their own engine (Debian's docker.io) on a private socket and data root (engine.py);
  3. import a Debian bookworm rootfs (debootstrap, cached) and tag stand-ins with every base image name the
     Dockerfiles use, each as close to its real base as the stand-in can be: nvidia/cuda and CANN with a CA
     store, ubuntu:22.04 without one, CANN with stub set_env.sh scripts in the 8.3 / 8.5.1 / 9.0.0 layouts,
     the CANN openEuler variant without groupadd/useradd (standins.py);
  4. build every stage of both Dockerfiles (torch: this machine's CPU wheel) and rebuild after a source-only
     change (builds.py);
  5. the CANN image: what provision picks from stand-in driver version.info files is built, and its entrypoint
     sources CANN's scripts as the base does; the openEuler variant builds its user (cann.py);
  6. bring the cpu profile up with the tiny model, submit a real job, check the mp4 and the user (stack.py);
  7. show the cuda / npu services requesting their devices from the engine, one device id per entry (devices.py);
  8. `make up` against no registry (pull fails, said so), then the air-gapped round trip: make bundle, remove
     the image and the models, make load, make up offline, one job (bundle.py).

Prints a summary with the figures and writes them to <work>/report.json. Caches (rootfs tarball, engine data
with BuildKit's pip cache) live under .cache/containers/ (I2V_CONTAINERS_WORK to move it).
"""
