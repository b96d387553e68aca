//! CPU time and memory of this process and of the receiver, from `/proc` (Linux).

/// Clock ticks per second of `/proc/*/stat` times (USER_HZ, 100 on every Linux build we run).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU seconds (user + system) of a process, from `/proc/PID/stat`.
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SEC)
}

/// A `VmRSS`-style field of `/proc/PID/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A reading, or the difference of two.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Usage {
    /// This load generator's CPU seconds.
    pub(crate) load_cpu: f64,
    /// The receiver's CPU seconds.
    pub(crate) target_cpu: Option<f64>,
    /// The receiver's resident memory now (KiB).
    pub(crate) target_rss_kib: Option<u64>,
    /// The receiver's peak resident memory (KiB).
    pub(crate) target_peak_kib: Option<u64>,
}

impl Usage {
    /// Reads this process and, when given, the receiver.
    pub(crate) fn read(pid: Option<u32>) -> Self {
        Self {
            load_cpu: cpu_secs("self").unwrap_or(0.0),
            target_cpu: pid.and_then(|p| cpu_secs(&p.to_string())),
            target_rss_kib: pid.and_then(|p| status_kib(p, "VmRSS:")),
            target_peak_kib: pid.and_then(|p| status_kib(p, "VmHWM:")),
        }
    }

    /// CPU used between `before` and this reading; memory as of this reading.
    pub(crate) fn since(&self, before: &Self) -> Self {
        Self {
            load_cpu: self.load_cpu - before.load_cpu,
            target_cpu: self.target_cpu.zip(before.target_cpu).map(|(a, b)| a - b),
            ..*self
        }
    }
}
