//! Container log streaming: which lines of a log read are new since the last read.
//!
//! ACI returns a container's log as one text with `timestamps=true` prefixing each line with
//! an RFC 3339 time. Reads overlap, so a cursor remembers the last timestamp shipped and how
//! many lines carried exactly that timestamp; lines at or before it are skipped. This keeps
//! the lines in order with no repeats, and the caller detects a possible gap when a tailed
//! read starts after the cursor.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::memory::LogCursor;

/// One line of a container log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When the container wrote the line, from the ACI timestamp prefix.
    pub timestamp: OffsetDateTime,
    pub text: String,
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

/// Returns the lines of `lines` (one whole read, in order) that come after `cursor`, and
/// the cursor to store once they are shipped. `None` means nothing was shipped yet.
pub fn take_new(cursor: Option<LogCursor>, lines: Vec<LogLine>) -> (NewLines, Option<LogCursor>) {
    let read_len = lines.len();
    let mut seen_at_last = 0;
    let mut fresh = Vec::new();
    for line in lines {
        let is_new = match cursor {
            None => true,
            Some(c) if line.timestamp > c.last_timestamp => true,
            Some(c) if line.timestamp == c.last_timestamp => {
                seen_at_last += 1;
                seen_at_last > c.lines_at_last_timestamp
            }
            Some(_) => false,
        };
        if is_new {
            fresh.push(line);
        }
    }
    let next = match fresh.last() {
        None => cursor,
        Some(last_new) => {
            let at = last_new.timestamp;
            let count = fresh.iter().rev().take_while(|l| l.timestamp == at).count() as u32;
            match cursor {
                Some(c) if c.last_timestamp == at => Some(LogCursor {
                    last_timestamp: at,
                    lines_at_last_timestamp: c.lines_at_last_timestamp + count,
                }),
                _ => Some(LogCursor {
                    last_timestamp: at,
                    lines_at_last_timestamp: count,
                }),
            }
        }
    };
    let possible_gap = cursor.is_some() && read_len > 0 && fresh.len() == read_len;
    let new = NewLines {
        lines: fresh,
        possible_gap,
    };
    (new, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const EPOCH: OffsetDateTime = datetime!(2026-01-01 0:00 UTC);

    fn read(content: &str) -> Vec<LogLine> {
        parse_log_content(content, EPOCH)
    }

    /// Applies one read to `cursor` as the executor does and returns the new lines.
    fn apply(cursor: &mut Option<LogCursor>, content: &str) -> NewLines {
        let (new, next) = take_new(*cursor, read(content));
        *cursor = next;
        new
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
        let mut cursor = None;
        let new = apply(
            &mut cursor,
            "2026-12-04T07:00:00Z a\n2026-12-04T07:00:01Z b\n",
        );
        assert_eq!(texts(&new), ["a", "b"]);
        assert!(!new.possible_gap);
    }

    #[test]
    fn cursor_skips_overlap() {
        let mut cursor = None;
        apply(
            &mut cursor,
            "2026-12-04T07:00:00Z a\n2026-12-04T07:00:01Z b\n",
        );
        let new = apply(
            &mut cursor,
            "2026-12-04T07:00:00Z a\n2026-12-04T07:00:01Z b\n2026-12-04T07:00:02Z c\n",
        );
        assert_eq!(texts(&new), ["c"]);
        assert!(!new.possible_gap);
    }

    #[test]
    fn cursor_counts_lines_sharing_a_timestamp() {
        let mut cursor = None;
        apply(
            &mut cursor,
            "2026-12-04T07:00:00Z a\n2026-12-04T07:00:00Z b\n",
        );
        let new = apply(
            &mut cursor,
            "2026-12-04T07:00:00Z a\n2026-12-04T07:00:00Z b\n2026-12-04T07:00:00Z c\n",
        );
        assert_eq!(texts(&new), ["c"]);
        let again = apply(
            &mut cursor,
            "2026-12-04T07:00:00Z a\n2026-12-04T07:00:00Z b\n2026-12-04T07:00:00Z c\n",
        );
        assert!(again.lines.is_empty());
    }

    #[test]
    fn cursor_reports_possible_gap() {
        let mut cursor = None;
        apply(&mut cursor, "2026-12-04T07:00:00Z a\n");
        let new = apply(
            &mut cursor,
            "2026-12-04T07:00:05Z x\n2026-12-04T07:00:06Z y\n",
        );
        assert_eq!(texts(&new), ["x", "y"]);
        assert!(new.possible_gap);
    }

    #[test]
    fn cursor_ignores_empty_read() {
        let mut cursor = None;
        apply(&mut cursor, "2026-12-04T07:00:00Z a\n");
        let new = apply(&mut cursor, "");
        assert!(new.lines.is_empty());
        assert!(!new.possible_gap);
    }
}
