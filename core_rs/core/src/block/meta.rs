//! `meta.json`: a block's metadata under Tempo's field names.

use serde::{Deserialize, Serialize};

use crate::schema::DedicatedColumn;

/// Block metadata as Tempo's `meta.json` spells it; `format` is ours, so Tempo
/// never mistakes our blocks for its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockMeta {
    pub format: String,
    #[serde(rename = "blockID")]
    pub block_id: String,
    #[serde(rename = "tenantID")]
    pub tenant_id: String,
    /// Earliest span start (RFC 3339, as Go's time.Time marshals).
    pub start_time: String,
    /// Latest span end.
    pub end_time: String,
    /// Traces in the block.
    pub total_objects: u64,
    /// Bytes of the data file.
    pub size: u64,
    pub compaction_level: u32,
    pub encoding: String,
    pub index_page_size: u32,
    /// Row groups in the data file.
    pub total_records: u32,
    pub data_encoding: String,
    pub bloom_shards: u32,
    pub footer_size: u32,
    pub replication_factor: u32,
    pub dedicated_columns: Vec<DedicatedColumn>,
    /// Spans in the block (ours; Tempo ignores unknown fields).
    #[serde(default)]
    pub total_spans: u64,
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + (m <= 2) as i64, m, d)
}

/// Unix nanoseconds as Go's RFC 3339 (`2024-05-01T10:00:00.5Z`, trailing zeros trimmed).
pub fn format_rfc3339(nanos: u64) -> String {
    let secs = (nanos / 1_000_000_000) as i64;
    let frac = nanos % 1_000_000_000;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    let mut s =
        format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", rem / 3600, rem / 60 % 60, rem % 60);
    if frac > 0 {
        let f = format!("{frac:09}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Parses RFC 3339 (`Z` or `±hh:mm` offsets, optional fraction) to unix nanoseconds.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)? as u32, num(8..10)? as u32);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() {
            return None;
        }
        let padded = format!("{:0<9}", &digits[..digits.len().min(9)]);
        frac = padded.parse().ok()?;
    }
    let offset = match &s[i..] {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) => {
            let v = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if o.starts_with('-') {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset;
    u64::try_from(secs).ok()?.checked_mul(1_000_000_000)?.checked_add(frac as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        for n in
            [0u64, 1, 1_700_000_000_123_456_789, 951_782_400_000_000_000, 4_102_444_800_500_000_000]
        {
            assert_eq!(parse_rfc3339(&format_rfc3339(n)), Some(n), "{}", format_rfc3339(n));
        }
        assert_eq!(format_rfc3339(1_700_000_000_500_000_000), "2023-11-14T22:13:20.5Z");
        assert_eq!(parse_rfc3339("2023-11-14T23:13:20.5+01:00"), Some(1_700_000_000_500_000_000));
        assert_eq!(parse_rfc3339("2023-11-14"), None);
        assert_eq!(parse_rfc3339("2023-13-14T00:00:00Z"), None);
    }
}
