# Sourced by gateway.sh, latency.sh and ab_burst.sh: how the cores are split between vakt, the
# load generator and a reference receiver.
#
# On two or more CPUs:
# - vakt's writer (with its SQLite connection and the WAL fsync thread) on the last CPU
#   (`writer_cpu`); vakt's other threads on the others.
# - vakt-load with one worker thread per CPU, free to run on every CPU, under SCHED_BATCH
#   (`chrt --batch 0`): a batch thread that vakt's ACK wakes does not preempt vakt, it waits for
#   vakt to block or for its time slice to end. With vakt-load pinned beside vakt's connection
#   threads as before 2026-12-06 14:00, that CPU was the ceiling (5-9% idle) while the writer's
#   CPU was a third idle, and every ACK and frame switched between the two processes (1.3
#   context switches per frame); README, "Results", has the A/B.
# - pysiaalarm (one thread) pinned to the last CPU.
# - PostgreSQL's processes are not pinned.
#
# VAKT_BENCH_WRITER_CPU=N|none; VAKT_BENCH_LOAD_CPU=LIST|all (a taskset list for vakt-load;
# default all); VAKT_BENCH_LOAD_THREADS (default: one per CPU, or 1 with a LOAD_CPU list);
# VAKT_BENCH_LOAD_SCHED=batch|normal (default batch). The split before 2026-12-06 14:00 is
# VAKT_BENCH_LOAD_CPU=0 VAKT_BENCH_LOAD_THREADS=1 VAKT_BENCH_LOAD_SCHED=normal.
# Sets: writer_cpu; pin_load (the command prefix for vakt-load); load_threads (its --threads
# arguments); pin_yardstick (one core for the machine-speed benchmark); pin_receiver.
cpus=$(nproc)
writer_cpu=${VAKT_BENCH_WRITER_CPU:-$([ "$cpus" -ge 2 ] && echo $((cpus - 1)) || echo none)}
load_cpu=${VAKT_BENCH_LOAD_CPU:-all}
[ "$load_cpu" != none ] || load_cpu=all
load_sched=${VAKT_BENCH_LOAD_SCHED:-batch}
threads=${VAKT_BENCH_LOAD_THREADS:-$([ "$load_cpu" = all ] && echo "$cpus" || echo 1)}
load_threads=(--threads "$threads")
pin_load=()
[ "$load_cpu" = all ] || pin_load=(taskset -c "$load_cpu")
case $load_sched in
  batch)
    command -v chrt > /dev/null || { echo "chrt (util-linux) is needed for VAKT_BENCH_LOAD_SCHED=batch" >&2; exit 1; }
    pin_load+=(chrt --batch 0) ;;
  normal) ;;
  *) echo "VAKT_BENCH_LOAD_SCHED: batch or normal, not $load_sched" >&2; exit 1 ;;
esac
pin_yardstick=()
[ "$cpus" -lt 2 ] || pin_yardstick=(taskset -c 0)
pin_receiver=()
[ "$writer_cpu" = none ] || pin_receiver=(taskset -c "$writer_cpu")
echo "== $cpus CPUs: vakt writer_cpu = $writer_cpu; vakt-load on CPUs $load_cpu, $threads threads, SCHED_${load_sched^^}" >&2
