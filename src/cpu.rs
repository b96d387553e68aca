//! A CPU of its own for the writer (`[receiver] writer_cpu`).
//!
//! Every ACK waits for the writer's commit, and a commit is a chain of hand-offs between the
//! writer thread and its database connection (on SQLite, the connection's own thread). When the
//! connection tasks keep every CPU busy, each hand-off waits for a CPU, and the commit with it:
//! on the 2-core reference machine a `BEGIN` took 2 ms of waiting per commit. With the writer
//! (and its SQLite connection thread) on one CPU and every other vakt thread kept off it, the
//! chain never waits behind vakt's own work (see README, "Results").
//!
//! Threads inherit the CPU mask of the thread that starts them: [`keep_off`] is called on the
//! main thread before the runtime starts, so runtime workers, blocking threads and read
//! connections stay off the writer's CPU; the writer thread calls [`pin_here`] first thing, so
//! the SQLite connection it opens runs on the writer's CPU too.

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// Why the writer's CPU cannot be set up as configured.
#[derive(Debug, PartialEq, Eq)]
pub enum CpuError {
    /// The CPU is not one this process may run on (`allowed` lists those).
    NotAllowed { cpu: usize, allowed: Vec<usize> },
    /// It is the only CPU this process may use: nothing would be left for the connections.
    OnlyCpu(usize),
    /// The kernel refused to read or set the CPU mask.
    Os(nix::Error),
}

impl std::fmt::Display for CpuError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotAllowed { cpu, allowed } => write!(
                f,
                "writer_cpu = {cpu}, but this process may only use CPUs {allowed:?}"
            ),
            Self::OnlyCpu(cpu) => write!(
                f,
                "writer_cpu = {cpu} is the only CPU this process may use; \
                 leave writer_cpu unset on one CPU"
            ),
            Self::Os(e) => write!(f, "setting CPU affinity: {e}"),
        }
    }
}

impl std::error::Error for CpuError {}

/// The CPUs the calling thread may run on.
pub fn allowed() -> Result<Vec<usize>, CpuError> {
    let set = sched_getaffinity(Pid::from_raw(0)).map_err(CpuError::Os)?;
    Ok((0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect())
}

/// Moves the calling thread (and every thread it starts from now on) off `cpu`, which must be
/// one of at least two CPUs it may use. Returns the CPUs it keeps.
pub fn keep_off(cpu: usize) -> Result<Vec<usize>, CpuError> {
    let allowed = allowed()?;
    if !allowed.contains(&cpu) {
        return Err(CpuError::NotAllowed { cpu, allowed });
    }
    let rest: Vec<usize> = allowed.into_iter().filter(|&c| c != cpu).collect();
    if rest.is_empty() {
        return Err(CpuError::OnlyCpu(cpu));
    }
    set_here(&rest)?;
    Ok(rest)
}

/// Runs the calling thread (and every thread it starts from now on) on `cpu` alone.
pub fn pin_here(cpu: usize) -> Result<(), CpuError> {
    set_here(&[cpu])
}

fn set_here(cpus: &[usize]) -> Result<(), CpuError> {
    let mut set = CpuSet::new();
    for &c in cpus {
        set.set(c).map_err(CpuError::Os)?;
    }
    sched_setaffinity(Pid::from_raw(0), &set).map_err(CpuError::Os)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Each test runs on a thread of its own, so changing its mask touches nothing else.

    #[test]
    fn keep_off_and_pin_change_this_thread_only() {
        let before = allowed().unwrap();
        assert!(
            before.len() >= 2,
            "this test needs two CPUs, has {before:?}"
        );
        let last = *before.last().unwrap();
        let rest = keep_off(last).unwrap();
        assert_eq!(allowed().unwrap(), rest);
        assert!(!rest.contains(&last));
        // A thread started now inherits the mask; pinning it to the kept-off CPU works.
        let child = std::thread::spawn(move || {
            let inherited = allowed().unwrap();
            pin_here(last).unwrap();
            (inherited, allowed().unwrap())
        });
        let (inherited, pinned) = child.join().unwrap();
        assert_eq!(inherited, rest);
        assert_eq!(pinned, vec![last]);
    }

    #[test]
    fn refuses_a_cpu_not_allowed_or_the_only_one() {
        let before = allowed().unwrap();
        let absent = (0..CpuSet::count()).find(|c| !before.contains(c)).unwrap();
        assert!(matches!(
            keep_off(absent),
            Err(CpuError::NotAllowed { cpu, .. }) if cpu == absent
        ));
        pin_here(before[0]).unwrap();
        assert_eq!(keep_off(before[0]), Err(CpuError::OnlyCpu(before[0])));
    }
}
