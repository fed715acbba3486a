//! Reading one-dimensional series for `backtest` and `detect`: NAB-style `timestamp,value` or
//! `index,value` CSV, and one function (or the aggregate) of the Azure per-minute trace.
//! Every error names the file and, where there is one, the line.

use crate::cmd::ExitError;
use std::path::{Path, PathBuf};

/// A series read from a file.
#[derive(Debug, Clone)]
pub struct Series {
    /// Display name (file, plus function for Azure).
    pub name: String,
    /// Label of each point (timestamp or index as written in the file).
    pub labels: Vec<String>,
    /// Values.
    pub values: Vec<f64>,
    /// Line number (1-based) of each point in the file.
    pub lines: Vec<usize>,
}

/// Parses `YYYY-MM-DD HH:MM:SS[.ffffff]` (or with `T`) to seconds since 1970 (UTC, proleptic).
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b' ' || b[10] == b'T') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    // days from civil (Howard Hinnant)
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

/// Reads a CSV series: `timestamp,value`, `index,value` or a single `value` column, with an
/// optional header. Rejects empty files, non-numeric or non-finite values, and timestamps or
/// indices that repeat or go backwards.
pub fn read_csv(path: &Path) -> anyhow::Result<Series> {
    read_csv_with(path, false)
}

/// As [`read_csv`]; with `unordered` the timestamp order is not checked (the NAB corpus itself
/// has repeated and backward timestamps, and NAB scores rows in file order).
pub fn read_csv_with(path: &Path, unordered: bool) -> anyhow::Result<Series> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ExitError::data(format!("{file}: cannot read: {e}")))?;
    let mut s = Series {
        name: file.clone(),
        labels: Vec::new(),
        values: Vec::new(),
        lines: Vec::new(),
    };
    let mut prev_key: Option<(f64, usize)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let (key_field, value_field) = match fields.len() {
            1 => (None, fields[0]),
            _ => (Some(fields[0]), fields[fields.len() - 1]),
        };
        let value: f64 = match value_field.parse() {
            Ok(v) => v,
            Err(_) if s.values.is_empty() && line_no == 1 => continue, // header
            Err(_) => {
                return Err(ExitError::data(format!(
                    "{file}:{line_no}: value {value_field:?} is not a number"
                )))
            }
        };
        if !value.is_finite() {
            return Err(ExitError::data(format!(
                "{file}:{line_no}: value {value_field:?} is not finite"
            )));
        }
        let key = match key_field {
            None => s.values.len() as f64,
            Some(k) => match k.parse::<f64>() {
                Ok(v) if v.is_finite() => v,
                _ => match parse_timestamp(k) {
                    Some(t) => t as f64,
                    None => {
                        return Err(ExitError::data(format!(
                            "{file}:{line_no}: {k:?} is neither a timestamp (YYYY-MM-DD HH:MM:SS) nor an index"
                        )))
                    }
                },
            },
        };
        if let Some((pk, pl)) = prev_key {
            if unordered {
                // rows are taken in file order
            } else if key == pk {
                return Err(ExitError::data(format!(
                    "{file}:{line_no}: duplicate timestamp {:?} (also on line {pl})",
                    key_field.unwrap_or("")
                )));
            } else if key < pk {
                return Err(ExitError::data(format!(
                    "{file}:{line_no}: timestamp {:?} is earlier than line {pl}: the series must be sorted",
                    key_field.unwrap_or("")
                )));
            }
        }
        prev_key = Some((key, line_no));
        s.labels
            .push(key_field.map_or_else(|| s.values.len().to_string(), str::to_string));
        s.values.push(value);
        s.lines.push(line_no);
    }
    if s.values.is_empty() {
        return Err(ExitError::data(format!("{file}: no data rows")));
    }
    Ok(s)
}

/// Resolves the Azure invocation file from a file or a directory containing it.
fn azure_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("invocations_per_function.csv")
    } else {
        path.to_path_buf()
    }
}

/// Reads one function (by HashFunction) or `aggregate` (sum of all functions) from the Azure
/// `invocations_per_function.csv` (`HashFunction,HashOwner,HashApp,minute_1..minute_N`).
pub fn read_azure(path: &Path, function: &str) -> anyhow::Result<Series> {
    let p = azure_file(path);
    let file = p.display().to_string();
    let text = std::fs::read_to_string(&p)
        .map_err(|e| ExitError::data(format!("{file}: cannot read: {e}")))?;
    let mut lines = text.lines().enumerate();
    let header = lines
        .next()
        .map(|(_, h)| h)
        .ok_or_else(|| ExitError::data(format!("{file}: empty file")))?;
    let cols: Vec<&str> = header.split(',').collect();
    let first = cols
        .iter()
        .position(|c| c.trim().starts_with("minute_") || c.trim() == "1")
        .ok_or_else(|| ExitError::data(format!("{file}:1: no minute_1.. columns in the header")))?;
    let n = cols.len() - first;
    let aggregate = function == "aggregate";
    let mut sum = vec![0.0; n];
    let mut found = false;
    for (i, line) in lines {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        if !aggregate && f[0].trim() != function {
            continue;
        }
        if f.len() != cols.len() {
            return Err(ExitError::data(format!(
                "{file}:{line_no}: {} fields, header has {}",
                f.len(),
                cols.len()
            )));
        }
        for (j, v) in f[first..].iter().enumerate() {
            let x: f64 = v.trim().parse().map_err(|_| {
                ExitError::data(format!(
                    "{file}:{line_no}: column {} value {v:?} is not a number",
                    cols[first + j].trim()
                ))
            })?;
            if !x.is_finite() {
                return Err(ExitError::data(format!(
                    "{file}:{line_no}: column {} is not finite",
                    cols[first + j].trim()
                )));
            }
            sum[j] += x;
        }
        found = true;
        if !aggregate {
            break;
        }
    }
    if !found {
        return Err(ExitError::config(format!(
            "--function {function}: no such HashFunction in {file}"
        )));
    }
    Ok(Series {
        name: format!("{file}#{function}"),
        labels: (1..=n).map(|m| format!("minute_{m}")).collect(),
        values: sum,
        lines: vec![0; n],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse() {
        assert_eq!(parse_timestamp("1970-01-02 00:00:01"), Some(86_401));
        assert_eq!(
            parse_timestamp("2014-04-10 07:15:00.000000"),
            parse_timestamp("2014-04-10 07:15:00")
        );
        assert_eq!(parse_timestamp("yesterday"), None);
    }
}
