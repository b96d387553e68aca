# Sourced by gateway.sh, latency.sh and ab_burst.sh: how the cores are split between vakt, the
# load generator and a reference receiver.
#
# On two or more CPUs:
# - vakt's writer (with its SQLite connection and the WAL fsync thread) on the last CPU
#   (`writer_cpu`); vakt's other threads on the others.
# - Bursts (closed loop): vakt-load with one worker thread per CPU, free to run on every CPU,
#   under SCHED_BATCH (`chrt --batch 0`): a batch thread that vakt's ACK wakes does not preempt
#   vakt, it waits for vakt to block or for its time slice to end. With vakt-load pinned beside
#   vakt's connection threads, as before 2026-12-06 14:00, that CPU was the ceiling (5-9% idle)
#   while the writer's CPU was a third idle, and the two processes switched for every ACK and
#   frame (1.3 context switches per frame, 0.5 now). README, "Results", has the A/B.
# - Runs at a fixed rate (latency, scale): vakt-load pinned to the first CPU with one thread, as
#   before. It needs no more at 10,000 frames/s, and on the writer's CPU it delays commits: the
#   PostgreSQL p99 at 10,000/s was 13-19 ms with the bursts' split against 9.5-11.5 pinned.
# - pysiaalarm (one thread) pinned to the last CPU.
# - PostgreSQL's processes are not pinned (pinned to the writer's CPU its p99 at 10,000/s was
#   14-16 ms against 11-15 unpinned, and beside vakt's connection threads 71 ms: README, 15:50).
#
# Bursts: VAKT_BENCH_LOAD_CPU=LIST|all (a taskset list; default all), VAKT_BENCH_LOAD_THREADS
# (default: one per CPU, or 1 with a list), VAKT_BENCH_LOAD_SCHED=batch|normal (default batch);
# the bursts' split before 2026-12-06 14:00 is VAKT_BENCH_LOAD_CPU=0 VAKT_BENCH_LOAD_THREADS=1
# VAKT_BENCH_LOAD_SCHED=normal. Fixed rate: VAKT_BENCH_PACED_CPU=LIST|all (default the first
# CPU). vakt: VAKT_BENCH_WRITER_CPU=N|none.
# Sets: writer_cpu; load_cmd (runs vakt-load split for a burst or a fixed rate); pin_yardstick
# (one core for the machine-speed benchmark); pin_receiver (pysiaalarm's CPU).
cpus=$(nproc)
first_cpu=$([ "$cpus" -ge 2 ] && echo 0 || echo all)
writer_cpu=${VAKT_BENCH_WRITER_CPU:-$([ "$cpus" -ge 2 ] && echo $((cpus - 1)) || echo none)}
load_cpu=${VAKT_BENCH_LOAD_CPU:-all}
[ "$load_cpu" != none ] || load_cpu=all
load_sched=${VAKT_BENCH_LOAD_SCHED:-batch}
load_threads=${VAKT_BENCH_LOAD_THREADS:-$([ "$load_cpu" = all ] && echo "$cpus" || echo 1)}
paced_cpu=${VAKT_BENCH_PACED_CPU:-$first_cpu}
[ "$paced_cpu" != none ] || paced_cpu=all

# taskset for a CPU list, nothing for all.
pin_to() { [ "$1" = all ] || echo "taskset -c $1"; }
burst_load=($(pin_to "$load_cpu"))
case $load_sched in
  batch)
    command -v chrt > /dev/null || { echo "chrt (util-linux) is needed for VAKT_BENCH_LOAD_SCHED=batch" >&2; exit 1; }
    burst_load+=(chrt --batch 0) ;;
  normal) ;;
  *) echo "VAKT_BENCH_LOAD_SCHED: batch or normal, not $load_sched" >&2; exit 1 ;;
esac
paced_load=($(pin_to "$paced_cpu"))
pin_yardstick=($(pin_to "$first_cpu"))
pin_receiver=()
[ "$writer_cpu" = none ] || pin_receiver=(taskset -c "$writer_cpu")
echo "== $cpus CPUs: vakt writer_cpu = $writer_cpu; vakt-load in bursts on CPUs $load_cpu," \
  "$load_threads threads, SCHED_${load_sched^^}; at a fixed rate on CPUs $paced_cpu, 1 thread" >&2

# load_cmd burst|paced VAKT_LOAD ARGS...: runs vakt-load as that kind of run is split.
load_cmd() {
  local kind=$1 bin=$2; shift 2
  if [ "$kind" = burst ]; then
    "${burst_load[@]}" "$bin" --threads "$load_threads" "$@"
  else
    "${paced_load[@]}" "$bin" --threads 1 "$@"
  fi
}
