#!/usr/bin/env bash
# Installs the external tools the TPM end-to-end tests and bench need: Debian's tpm2-tools (the
# real client the TPM engine is proven with) and swtpm (the baseline of bench/tpm.bench.ts).
# Idempotent: when every tool is already on PATH it does nothing and returns at once.
set -eu

needed=(tpm2_startup tpm2_checkquote swtpm swtpm_setup)
missing=0
for tool in "${needed[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing=1
done
if [ "$missing" -eq 0 ]; then
  echo "install-test-tools: tpm2-tools and swtpm already installed"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-test-tools: not root, cannot install tpm2-tools and swtpm (the TPM end-to-end tests will skip)" >&2
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends tpm2-tools swtpm swtpm-tools >/dev/null
echo "install-test-tools: installed $(tpm2_startup --version 2>/dev/null | head -n 1 || echo tpm2-tools)"
