//! Process metrics read from `/proc/self` at scrape time, under the conventional
//! unprefixed `process_*` names that Prometheus client libraries export.

use std::fs;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

/// Figures taken from `/proc/self/stat` and `/proc/stat`, converted to bytes and seconds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProcessStat {
    pub cpu_seconds: f64,
    pub threads: i64,
    pub start_time_seconds: f64,
    pub virtual_memory_bytes: i64,
    pub resident_memory_bytes: i64,
}

/// Collector that reads the process figures on every scrape. On a system without `/proc`
/// it encodes nothing.
#[derive(Debug)]
pub(crate) struct ProcessCollector {
    clock_ticks_per_second: f64,
    page_size_bytes: i64,
}

impl ProcessCollector {
    pub(crate) fn new() -> Self {
        // SAFETY: sysconf only reads a configuration value and has no preconditions.
        let (ticks, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        // Linux reports 100 ticks and 4 KiB pages on every common platform, the fallback
        // when sysconf fails.
        #[allow(clippy::useless_conversion, reason = "c_long is i32 on 32-bit targets")]
        Self {
            clock_ticks_per_second: if ticks > 0 { ticks as f64 } else { 100.0 },
            page_size_bytes: if page > 0 { i64::from(page) } else { 4096 },
        }
    }

    fn read_stat(&self) -> Option<ProcessStat> {
        let stat = fs::read_to_string("/proc/self/stat").ok()?;
        let boot_time = fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| parse_boot_time(&s))?;
        parse_stat(
            &stat,
            self.clock_ticks_per_second,
            self.page_size_bytes,
            boot_time,
        )
    }
}

/// Parses `/proc/self/stat`. The second field is the command name in parentheses and may
/// contain spaces, so the numeric fields are counted from the last `)`.
pub(crate) fn parse_stat(
    stat: &str,
    ticks_per_second: f64,
    page_size_bytes: i64,
    boot_time_seconds: f64,
) -> Option<ProcessStat> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state) in proc(5), so field N sits at index N - 3.
    let number = |n: usize| fields.get(n - 3)?.parse::<i64>().ok();
    let ticks = number(14)? + number(15)?;
    Some(ProcessStat {
        cpu_seconds: ticks as f64 / ticks_per_second,
        threads: number(20)?,
        start_time_seconds: boot_time_seconds + number(22)? as f64 / ticks_per_second,
        virtual_memory_bytes: number(23)?,
        resident_memory_bytes: number(24)? * page_size_bytes,
    })
}

/// Reads the `btime` line (boot time in Unix seconds) of `/proc/stat`.
pub(crate) fn parse_boot_time(proc_stat: &str) -> Option<f64> {
    proc_stat
        .lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Reads the soft limit from the `Max open files` line of `/proc/self/limits`.
pub(crate) fn parse_max_fds(limits: &str) -> Option<i64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn open_fds() -> Option<i64> {
    let count = fs::read_dir("/proc/self/fd").ok()?.count();
    i64::try_from(count).ok()
}

fn gauge<N>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: N,
) -> Result<(), std::fmt::Error>
where
    ConstGauge<N>: EncodeMetric,
{
    let metric = ConstGauge::new(value);
    let metric_encoder = encoder.encode_descriptor(name, help, unit, metric.metric_type())?;
    metric.encode(metric_encoder)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(stat) = self.read_stat() {
            let cpu = ConstCounter::new(stat.cpu_seconds);
            let metric_encoder = encoder.encode_descriptor(
                "process_cpu",
                "Total user and system CPU time spent.",
                Some(&Unit::Seconds),
                cpu.metric_type(),
            )?;
            cpu.encode(metric_encoder)?;
            let bytes = Some(&Unit::Bytes);
            let resident = stat.resident_memory_bytes;
            let virt = stat.virtual_memory_bytes;
            gauge(
                &mut encoder,
                "process_resident_memory",
                "Resident memory size.",
                bytes,
                resident,
            )?;
            gauge(
                &mut encoder,
                "process_virtual_memory",
                "Virtual memory size.",
                bytes,
                virt,
            )?;
            let start = stat.start_time_seconds;
            let help = "Start time of the process since the Unix epoch.";
            gauge(
                &mut encoder,
                "process_start_time",
                help,
                Some(&Unit::Seconds),
                start,
            )?;
            gauge(
                &mut encoder,
                "process_threads",
                "Number of OS threads.",
                None,
                stat.threads,
            )?;
        }
        if let Some(open) = open_fds() {
            gauge(
                &mut encoder,
                "process_open_fds",
                "Number of open file descriptors.",
                None,
                open,
            )?;
        }
        let max = fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|l| parse_max_fds(&l));
        if let Some(max) = max {
            let help = "Maximum number of open file descriptors.";
            gauge(&mut encoder, "process_max_fds", help, None, max)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (tokio (main) x) S 1 4242 4242 0 -1 4194560 2000 0 0 0 \
        250 50 0 0 20 0 7 0 1000 104857600 2560 18446744073709551615";

    #[test]
    fn stat_with_spaces_in_command_name() {
        let stat = parse_stat(STAT, 100.0, 4096, 1_700_000_000.0).expect("parses");
        assert_eq!(stat.cpu_seconds, 3.0);
        assert_eq!(stat.threads, 7);
        assert_eq!(stat.start_time_seconds, 1_700_000_010.0);
        assert_eq!(stat.virtual_memory_bytes, 104_857_600);
        assert_eq!(stat.resident_memory_bytes, 2560 * 4096);
    }

    #[test]
    fn truncated_stat_is_none() {
        assert_eq!(parse_stat("1 (x) S 1 2 3", 100.0, 4096, 0.0), None);
    }

    #[test]
    fn boot_time_line() {
        let proc_stat = "cpu  1 2 3\nbtime 1700000000\nprocesses 5\n";
        assert_eq!(parse_boot_time(proc_stat), Some(1_700_000_000.0));
    }

    #[test]
    fn max_open_files_soft_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
            Max open files            1024                 524288               files\n";
        assert_eq!(parse_max_fds(limits), Some(1024));
    }
}
