//! Container log streaming: which lines of a log read are new since the last read.
//!
//! ACI returns a container's log as one text with `timestamps=true` prefixing each line with
//! an RFC 3339 time. Reads overlap, so a cursor remembers the last timestamp shipped and how
//! many lines carried exactly that timestamp; lines at or before it are skipped. This keeps
//! the lines in order with no repeats, and the caller detects a possible gap when a tailed
//! read starts after the cursor.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// One line of a container log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When the container wrote the line, from the ACI timestamp prefix.
    pub timestamp: OffsetDateTime,
    pub text: String,
}

/// Position in a container's log up to which lines were shipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogCursor {
    last: Option<OffsetDateTime>,
    lines_at_last: usize,
}

/// Lines a read added, and whether the read may have missed some.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLines {
    pub lines: Vec<LogLine>,
    /// True when every line of the read was new although the cursor had already shipped
    /// lines: a tailed read may then have cut lines between the two reads, so the caller
    /// should read again without `tail`.
    pub possible_gap: bool,
}

/// Parses log content read with `timestamps=true`. A line without a parsable timestamp is
/// kept with the timestamp of the line before it (or `fallback` for the first line), so
/// nothing the container wrote is dropped.
pub fn parse_log_content(content: &str, fallback: OffsetDateTime) -> Vec<LogLine> {
    let mut previous = fallback;
    content
        .lines()
        .map(|raw| {
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            let parsed = line.split_once(' ').and_then(|(stamp, text)| {
                OffsetDateTime::parse(stamp, &Rfc3339)
                    .ok()
                    .map(|at| (at, text))
            });
            let (timestamp, text) = match parsed {
                Some((at, text)) => (at, text),
                None => match OffsetDateTime::parse(line, &Rfc3339) {
                    Ok(at) => (at, ""),
                    Err(_) => (previous, line),
                },
            };
            previous = timestamp;
            LogLine {
                timestamp,
                text: text.to_owned(),
            }
        })
        .collect()
}

impl LogCursor {
    /// Returns the lines of `lines` (one whole read, in order) that were not shipped
    /// before, and moves the cursor past them.
    pub fn take_new(&mut self, lines: Vec<LogLine>) -> NewLines {
        let had_shipped = self.last.is_some();
        let read_len = lines.len();
        let mut seen_at_last = 0;
        let mut fresh = Vec::new();
        for line in lines {
            let is_new = match self.last {
                None => true,
                Some(last) if line.timestamp > last => true,
                Some(last) if line.timestamp == last => {
                    seen_at_last += 1;
                    seen_at_last > self.lines_at_last
                }
                Some(_) => false,
            };
            if is_new {
                fresh.push(line);
            }
        }
        if let Some(last_new) = fresh.last() {
            let at = last_new.timestamp;
            let count = fresh.iter().rev().take_while(|l| l.timestamp == at).count();
            if self.last == Some(at) {
                self.lines_at_last += count;
            } else {
                self.last = Some(at);
                self.lines_at_last = count;
            }
        }
        let possible_gap = had_shipped && read_len > 0 && fresh.len() == read_len;
        NewLines {
            lines: fresh,
            possible_gap,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const EPOCH: OffsetDateTime = datetime!(2026-01-01 0:00 UTC);

    fn read(content: &str) -> Vec<LogLine> {
        parse_log_content(content, EPOCH)
    }

    fn texts(new: &NewLines) -> Vec<&str> {
        new.lines.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn parse_splits_timestamp_and_text() {
        let lines = read("2026-12-04T07:59:09.0731234Z hello world\n");
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].text, "hello world");
        assert_eq!(
            lines[0].timestamp,
            datetime!(2026-12-04 07:59:09.0731234 UTC)
        );
    }

    #[test]
    fn parse_keeps_lines_without_timestamp() {
        let lines = read("2026-12-04T07:59:09Z first\ncontinued\n");
        assert_eq!(lines[1].text, "continued");
        assert_eq!(lines[1].timestamp, lines[0].timestamp);
    }

    #[test]
    fn parse_keeps_empty_lines_with_timestamp() {
        let lines = read("2026-12-04T07:59:09Z\n");
        assert_eq!(lines[0].text, "");
    }

    #[test]
    fn cursor_ships_first_read_whole() {
        let mut cursor = LogCursor::default();
        let new = cursor.take_new(read("2026-12-04T07:00:00Z a\n2026-12-04T07:00:01Z b\n"));
        assert_eq!(texts(&new), ["a", "b"]);
        assert!(!new.possible_gap);
    }

    #[test]
    fn cursor_skips_overlap() {
        let mut cursor = LogCursor::default();
        cursor.take_new(read("2026-12-04T07:00:00Z a\n2026-12-04T07:00:01Z b\n"));
        let new = cursor.take_new(read(
            "2026-12-04T07:00:00Z a\n2026-12-04T07:00:01Z b\n2026-12-04T07:00:02Z c\n",
        ));
        assert_eq!(texts(&new), ["c"]);
        assert!(!new.possible_gap);
    }

    #[test]
    fn cursor_counts_lines_sharing_a_timestamp() {
        let mut cursor = LogCursor::default();
        cursor.take_new(read("2026-12-04T07:00:00Z a\n2026-12-04T07:00:00Z b\n"));
        let new = cursor.take_new(read(
            "2026-12-04T07:00:00Z a\n2026-12-04T07:00:00Z b\n2026-12-04T07:00:00Z c\n",
        ));
        assert_eq!(texts(&new), ["c"]);
        let again = cursor.take_new(read(
            "2026-12-04T07:00:00Z a\n2026-12-04T07:00:00Z b\n2026-12-04T07:00:00Z c\n",
        ));
        assert!(again.lines.is_empty());
    }

    #[test]
    fn cursor_reports_possible_gap() {
        let mut cursor = LogCursor::default();
        cursor.take_new(read("2026-12-04T07:00:00Z a\n"));
        let new = cursor.take_new(read("2026-12-04T07:00:05Z x\n2026-12-04T07:00:06Z y\n"));
        assert_eq!(texts(&new), ["x", "y"]);
        assert!(new.possible_gap);
    }

    #[test]
    fn cursor_ignores_empty_read() {
        let mut cursor = LogCursor::default();
        cursor.take_new(read("2026-12-04T07:00:00Z a\n"));
        let new = cursor.take_new(read(""));
        assert!(new.lines.is_empty());
        assert!(!new.possible_gap);
    }
}
