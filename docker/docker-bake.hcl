// Release images, from the repository root:
//   docker buildx bake -f docker/docker-bake.hcl --print              # what would be built
//   docker buildx bake -f docker/docker-bake.hcl --push cuda cann cpu  # CI on a tag (.github/workflows/images.yml)
//   make build-cuda / make build-cann                                  # one variant for this host, --load
// Tags follow provision's I2V_IMAGE (provision/host.py image_ref): <REGISTRY>/i2v-deploy:<VERSION>-cuda12.8,
// ...-cann8.3.rc2-910b (openEuler variants end in -openeuler24.03), ...-cpu; each also under REGISTRY_MIRROR.

// Public registry the images are pushed to and pulled from (provision env --registry picks it on hosts).
variable "REGISTRY" { default = "docker.io/i2vdeploy" }
// Aliyun Container Registry mirror of the same tags, fast from mainland China; empty: no mirror tags.
variable "REGISTRY_MIRROR" { default = "registry.cn-hangzhou.aliyuncs.com/i2vdeploy" }
// Release (the workflow passes the git tag without its v) and commit, for tags and OCI labels.
variable "VERSION" { default = "0.1.0" }
variable "VCS_REF" { default = "unknown" }
// Both architectures: Atlas servers are mostly Kunpeng (arm64), GPU servers mostly x86_64 (GH200: arm64).
variable "PLATFORMS" { default = "linux/amd64,linux/arm64" }
// Mirrors, defaulting to the Dockerfiles' (Tsinghua); a builder outside China sets the official ones.
variable "PIP_INDEX_URL" { default = "https://pypi.tuna.tsinghua.edu.cn/simple" }
variable "APT_MIRROR" { default = "http://mirrors.tuna.tsinghua.edu.cn" }
// Registry build cache (one ref per variant); empty: no cache import/export (local builds).
variable "CACHE_REGISTRY" { default = "${REGISTRY}" }

function "tags" {
  params = [suffix]
  result = compact([
    "${REGISTRY}/i2v-deploy:${VERSION}-${suffix}",
    notequal(REGISTRY_MIRROR, "") ? "${REGISTRY_MIRROR}/i2v-deploy:${VERSION}-${suffix}" : "",
  ])
}

function "cache_from" {
  params = [suffix]
  result = notequal(CACHE_REGISTRY, "") ? ["type=registry,ref=${CACHE_REGISTRY}/i2v-deploy:buildcache-${suffix}"] : []
}

function "cache_to" {
  params = [suffix]
  result = notequal(CACHE_REGISTRY, "") ? ["type=registry,ref=${CACHE_REGISTRY}/i2v-deploy:buildcache-${suffix},mode=max"] : []
}

group "default" {
  targets = ["cuda", "cann", "cpu"]
}

target "_common" {
  context   = "."
  target    = "runtime"
  platforms = split(",", PLATFORMS)
  args = {
    PIP_INDEX_URL = PIP_INDEX_URL
    APT_MIRROR    = APT_MIRROR
    VERSION       = VERSION
    VCS_REF       = VCS_REF
  }
}

// One image per CUDA variant provision can choose. torch's wheels carry their own CUDA libraries;
// the base image's CUDA decides the driver the NVIDIA toolkit demands (NVIDIA_REQUIRE_CUDA). The 12.4
// variant (drivers 550.x) runs torch's cu126 build through CUDA minor-version compatibility, because
// no current torch has a cu124 build.
target "cuda" {
  inherits   = ["_common"]
  name       = "cuda-${replace(v.cuda, ".", "-")}"
  matrix = {
    v = [
      { cuda = "12.8", image = "12.8.1", torch = "2.9.1", torchaudio = "2.9.1", index = "cu128" },
      { cuda = "12.6", image = "12.6.3", torch = "2.9.1", torchaudio = "2.9.1", index = "cu126" },
      { cuda = "12.4", image = "12.4.1", torch = "2.9.1", torchaudio = "2.9.1", index = "cu126" },
    ]
  }
  dockerfile = "docker/Dockerfile.cuda"
  args = {
    CUDA_VERSION    = v.image
    TORCH_VERSION      = v.torch
    TORCHAUDIO_VERSION = v.torchaudio
    TORCH_INDEX_URL    = "https://download.pytorch.org/whl/${v.index}"
    LOCK            = "cuda"
  }
  tags       = tags("cuda${v.cuda}")
  cache-from = cache_from("cuda${v.cuda}")
  cache-to   = cache_to("cuda${v.cuda}")
}

// CANN x chip x OS, each with its known-good torch / torch_npu pair (ARCHITECTURE.md; provision/host.py
// CANN_PAIRS). torch from the CPU index: torch_npu needs the +cpu build on x86_64.
target "cann" {
  inherits = ["_common"]
  name     = "cann-${replace(p.cann, ".", "-")}-${chip}-${replace(os, ".", "-")}"
  matrix = {
    p = [
      { cann = "8.3.rc2", torch = "2.8.0", torchaudio = "2.8.0", torch_npu = "2.8.0" },
      { cann = "8.5.1", torch = "2.9.0", torchaudio = "2.9.0", torch_npu = "2.9.0" },
      { cann = "9.0.0", torch = "2.10.0", torchaudio = "2.10.0", torch_npu = "2.10.0" },
    ]
    chip = ["910b", "a3", "310p"]
    os   = ["ubuntu22.04", "openeuler24.03"]
  }
  dockerfile = "docker/Dockerfile.cann"
  args = {
    CANN_VERSION      = p.cann
    CHIP              = chip
    OS                = os
    SOC_VERSION       = lookup({ "910b" = "ascend910b1", "a3" = "ascend910_9391", "310p" = "ascend310p1" }, chip, "")
    TORCH_VERSION      = p.torch
    TORCHAUDIO_VERSION = p.torchaudio
    TORCH_NPU_VERSION  = p.torch_npu
    TORCH_INDEX_URL   = "https://download.pytorch.org/whl/cpu"
    LOCK              = "cann"
  }
  tags       = tags(equal(os, "ubuntu22.04") ? "cann${p.cann}-${chip}" : "cann${p.cann}-${chip}-${os}")
  cache-from = cache_from("cann${p.cann}-${chip}-${os}")
  cache-to   = cache_to("cann${p.cann}-${chip}-${os}")
}

// Hosts without an accelerator (the cpu profile): the CUDA Dockerfile on plain Ubuntu with CPU torch.
target "cpu" {
  inherits   = ["_common"]
  dockerfile = "docker/Dockerfile.cuda"
  args = {
    BUILD_BASE      = "ubuntu:22.04"
    RUNTIME_BASE    = "ubuntu:22.04"
    TORCH_VERSION      = "2.9.1"
    TORCHAUDIO_VERSION = "2.9.1"
    TORCH_INDEX_URL    = "https://download.pytorch.org/whl/cpu"
    LOCK               = "cuda"
  }
  tags       = tags("cpu")
  cache-from = cache_from("cpu")
  cache-to   = cache_to("cpu")
}
