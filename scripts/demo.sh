#!/usr/bin/env bash
# The main job: build hive if needed, then run a local 3-node cluster that
# tells a story with the stories260K model (from ../shared/models,
# $HIVE_MODELS, or downloaded from Hugging Face).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec ./build/hive demo "$@"
