# Sourced by gateway.sh and latency.sh: how the cores are split between vakt, the load
# generator and a reference receiver. On two or more CPUs: vakt's writer on the last CPU
# (`writer_cpu`), vakt-load pinned to the first, pysiaalarm to the last. VAKT_BENCH_WRITER_CPU
# and VAKT_BENCH_LOAD_CPU override either (`none`: no pinning).
# Sets: writer_cpu, load_cpu, pin_load (a command prefix), pin_receiver (a command prefix).
cpus=$(nproc)
writer_cpu=${VAKT_BENCH_WRITER_CPU:-$([ "$cpus" -ge 2 ] && echo $((cpus - 1)) || echo none)}
load_cpu=${VAKT_BENCH_LOAD_CPU:-$([ "$cpus" -ge 2 ] && echo 0 || echo none)}
pin_load=()
[ "$load_cpu" = none ] || pin_load=(taskset -c "$load_cpu")
pin_receiver=()
[ "$writer_cpu" = none ] || pin_receiver=(taskset -c "$writer_cpu")
echo "== $cpus CPUs: vakt writer_cpu = $writer_cpu, vakt-load on CPU $load_cpu" >&2
