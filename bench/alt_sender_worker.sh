#!/bin/sh
# `tidings` with the pyreqwest sender of bench/alt_sender.py swapped in (the bench's experiment)
cd "$(dirname "$0")/.." && exec "${TIDINGS_BENCH_PYTHON:-python3}" -m bench.alt_sender "$@"
