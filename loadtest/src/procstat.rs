//! The appliance process as Linux shows it in `/proc`: CPU time used and resident memory.
//!
//! CPU time is `utime + stime` from `/proc/PID/stat` (proc(5), fields 14 and 15, in clock
//! ticks), summed over every thread; resident memory is `VmRSS` from `/proc/PID/status`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProcError {
    #[error("cannot read {path}: {detail}; is process {pid} running on this machine?")]
    Unreadable {
        pid: u32,
        path: PathBuf,
        detail: String,
    },
    #[error("{path} is not in the format proc(5) describes")]
    Format { path: PathBuf },
}

/// A point in the process's life: CPU seconds used so far, and when that was read.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    cpu: Duration,
    at: Instant,
}

impl CpuSample {
    /// Cores kept busy on average between `self` and a later sample.
    pub fn cores_until(&self, later: &CpuSample) -> f64 {
        let wall = later.at.duration_since(self.at).as_secs_f64();
        if wall <= 0.0 {
            return 0.0;
        }
        later.cpu.saturating_sub(self.cpu).as_secs_f64() / wall
    }
}

/// One process's `/proc` entries.
#[derive(Debug, Clone, Copy)]
pub struct Process {
    pub pid: u32,
    ticks_per_sec: u64,
}

impl Process {
    pub fn new(pid: u32) -> Result<Process, ProcError> {
        let process = Process {
            pid,
            ticks_per_sec: ticks_per_second(),
        };
        process.cpu()?;
        Ok(process)
    }

    pub fn cpu(&self) -> Result<CpuSample, ProcError> {
        let path = PathBuf::from(format!("/proc/{}/stat", self.pid));
        let text = self.read(&path)?;
        let ticks = cpu_ticks(&text).ok_or(ProcError::Format { path })?;
        let cpu = Duration::from_secs_f64(ticks as f64 / self.ticks_per_sec as f64);
        Ok(CpuSample {
            cpu,
            at: Instant::now(),
        })
    }

    /// Resident memory in bytes.
    pub fn rss(&self) -> Result<u64, ProcError> {
        let path = PathBuf::from(format!("/proc/{}/status", self.pid));
        let text = self.read(&path)?;
        vm_rss_bytes(&text).ok_or(ProcError::Format { path })
    }

    fn read(&self, path: &std::path::Path) -> Result<String, ProcError> {
        std::fs::read_to_string(path).map_err(|e| ProcError::Unreadable {
            pid: self.pid,
            path: path.to_owned(),
            detail: e.to_string(),
        })
    }
}

/// `utime + stime` of a `/proc/PID/stat` line. The command name in field 2 may hold spaces
/// and parentheses, so fields are counted from the last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn vm_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut parts = line.split_whitespace().skip(1);
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next()? {
        "kB" => Some(value * 1024),
        _ => None,
    }
}

/// `sysconf(_SC_CLK_TCK)` as `getconf` reports it; 100 on every mainstream Linux build.
fn ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|&ticks| ticks > 0)
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn cpu_time_is_read_after_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (vouch (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    1500 250 0 0 20 0 9 0 12345 1000000 5000";
        assert_eq!(cpu_ticks(stat), Some(1750));
        assert_eq!(cpu_ticks("4242 (vouch) S 1"), None);
    }

    #[test]
    fn resident_memory_is_read_in_bytes() {
        let status = "Name:\tvouch\nVmPeak:\t  9000 kB\nVmRSS:\t   20480 kB\nThreads:\t9\n";
        assert_eq!(vm_rss_bytes(status), Some(20480 * 1024));
        assert_eq!(vm_rss_bytes("Name:\tvouch\n"), None);
    }

    #[test]
    fn this_process_can_be_read() {
        let me = Process::new(std::process::id()).unwrap();
        assert!(me.rss().unwrap() > 0);
        let before = me.cpu().unwrap();
        let after = me.cpu().unwrap();
        assert!(before.cores_until(&after) >= 0.0);
    }
}
