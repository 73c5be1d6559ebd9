//! Readings the benchmark takes: the worker's `/proc` figures, the emulator's request
//! counters and the worker's Prometheus text.

use std::collections::BTreeMap;

use serde_json::Value;

/// Peak resident set and CPU time of a process.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessUsage {
    /// `VmHWM` from `/proc/<pid>/status`, bytes.
    pub peak_rss_bytes: u64,
    /// `utime + stime` from `/proc/<pid>/stat`, seconds.
    pub cpu_seconds: f64,
}

/// Reads `pid`'s usage; `None` when the process is gone.
pub fn process_usage(pid: u32) -> Option<ProcessUsage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let peak_kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces:
    // state is field 3, utime field 14 and stime field 15.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf(3) reads a system constant and touches no memory.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(ProcessUsage {
        peak_rss_bytes: peak_kib * 1024,
        cpu_seconds: ticks as f64 / per_second,
    })
}

/// Requests of one emulator operation, all statuses.
pub fn counter_total(counters: &Value, operation: &str) -> u64 {
    counters[operation].as_object().map_or(0, |by_status| {
        by_status.values().filter_map(Value::as_u64).sum()
    })
}

/// Requests of one emulator operation with one status.
pub fn counter_status(counters: &Value, operation: &str, status: &str) -> u64 {
    counters[operation][status].as_u64().unwrap_or(0)
}

/// One sample line of Prometheus text: family and labels.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses the sample lines of Prometheus or OpenMetrics text, skipping comments.
pub fn parse_metrics(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(parse_sample)
        .collect()
}

fn parse_sample(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)),
        None => (series, BTreeMap::new()),
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Parses `a="x",b="y"`. Label values here come from small fixed sets without quotes or
/// commas, so no unescaping is needed.
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    text.split(',')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            Some((key.to_owned(), value.trim_matches('"').to_owned()))
        })
        .collect()
}

/// Returns the value of the unlabelled sample `name`, if present.
pub fn single(samples: &[Sample], name: &str) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.name == name && s.labels.is_empty())
        .map(|s| s.value)
}

/// Nearest-rank percentile of sorted `values`; `p` in [0, 1].
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}
