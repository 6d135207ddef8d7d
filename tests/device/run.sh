#!/usr/bin/env bash
# The GPU column of the conformance matrix, in one call on a machine with an accelerator:
#
#     tests/device/run.sh [REPORT_DIR]        (default: reports/device)
#
# Runs the suite (ci profile) for the reference and TFRS with --device all, each with its
# expectations file: one run per device TensorFlow sees (cpu, gpu and, where present, tpu), so the
# --device gpu run is one of them and is not repeated (device time is scarce). A missing GPU report
# afterwards fails the script. Then renders REPORT_DIR/matrix.md and matrix.html.
# PYTHON: an interpreter with the project installed (`pip install -e ".[tfrs,gpu]"`); without
# it, one is made in .venv-device. Exit code: 0 when every run passed, 1 when a check failed,
# 2 when no GPU is visible or a run could not report (exit code 2 or more of python -m conformance).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${1:-reports/device}"
mkdir -p "$OUT"

if [ -z "${PYTHON:-}" ]; then
    if [ ! -x .venv-device/bin/python ]; then
        python3 -m venv .venv-device && .venv-device/bin/python -m pip install -q -e ".[tfrs,gpu]" || exit 2
    fi
    PYTHON=.venv-device/bin/python
fi
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

"$PYTHON" - <<'PY' || exit 2
import os
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
import tensorflow as tf
gpus = tf.config.list_physical_devices("GPU")
print(f"run.sh: TensorFlow {tf.__version__} sees {len(gpus)} GPU(s): {[g.name for g in gpus]}")
raise SystemExit(0 if gpus else "run.sh: no GPU visible to TensorFlow; nothing to run")
PY

worst=0
for impl in reference tfrs; do
    args=(--impl "$impl" --profile ci --report-dir "$OUT")
    [ -f "adapters/expectations/$impl.toml" ] && args+=(--expectations "adapters/expectations/$impl.toml")
    echo "run.sh: python -m conformance ${args[*]} --device all"
    "$PYTHON" -m conformance "${args[@]}" --device all
    code=$?
    echo "run.sh: $impl on every device: exit code $code"
    [ "$code" -gt "$worst" ] && worst=$code
    if [ ! -f "$OUT/$impl-gpu.json" ]; then
        echo "run.sh: no GPU report $OUT/$impl-gpu.json for $impl" >&2
        worst=2
    fi
done

"$PYTHON" -m conformance report --markdown "$OUT/matrix.md" --html "$OUT/matrix.html" "$OUT"/*.json || worst=2
echo "run.sh: reports in $OUT (matrix.md, matrix.html); exit code $worst"
exit $(( worst > 2 ? 2 : worst ))
