//! Readers for the Azure Functions 2019 trace layouts (one-day sample and original 14-day files).
//!
//! Two directory layouts are recognised by [`AzureTrace::open`] ([`AzureTrace::from_bytes`] reads
//! the same files from memory):
//!
//! - **one day** (the vHive In-Vitro sample in `shared/data/azure2019-day`):
//!   `invocations_per_function.csv`, `function_durations.csv`, `app_memory.csv`;
//! - **14 days** (the original Azure Public Dataset release):
//!   `invocations_per_function_md.anon.dNN.csv`, `function_durations_percentiles.anon.dNN.csv`,
//!   `app_memory_percentiles.anon.dNN.csv`, one triple per day `NN` (01..14).
//!
//! Columns are located by header name (case-insensitive), so the column order does not matter:
//! the invocation file needs `HashOwner`, `HashApp`, `HashFunction` and the minute columns
//! (`1..N` or `minute_1..minute_N`, each exactly once), `Trigger` is optional; the durations file
//! needs the three hashes and `percentile_Average_{0,1,25,50,75,99,100}`; the memory file needs
//! `HashOwner`, `HashApp` and `AverageAllocatedMb`. Other columns are ignored. Fields are split
//! on commas; a field wrapped in double quotes has them removed (quoted commas are not
//! supported: the Azure files have none). Blank lines are skipped.
//!
//! Rules (each pinned by a test in `simulator/tests/trace_azure.rs`):
//!
//! - a function is keyed by its (owner, app, function) hashes; dense indices are assigned in
//!   first-seen order over the invocation files, days in order, rows in file order, and stay
//!   stable across days. A row whose counts are all zero still gets an index (and metadata) but
//!   yields no [`FunctionDay`];
//! - minute column `c` (1-based) of selected day `d` (0-based position in the selection) is
//!   absolute minute `d * N + c - 1`, `N` being the number of minute columns (1440 for Azure);
//!   every selected day must have the same `N`;
//! - `memory_mb` = the app's `AverageAllocatedMb` on the day the function first appears, divided
//!   by the number of the app's functions present in that day's invocation file; an app with no
//!   memory row uses the trace-wide median app memory (median of `AverageAllocatedMb` over every
//!   row of the selected days' memory files, mean of the two middle values when even);
//! - durations come from the durations file of the day the function first appears; a function
//!   with no duration row uses the trace-wide median function's table: the rows of all selected
//!   days' durations files are ordered by p50, the lower median p50 is taken, and the first row
//!   (in day and file order) with that p50 gives the table;
//! - percentiles that decrease in the file are made non-decreasing by a running maximum
//!   (`p[i] = max(p[i], p[i-1])`); the real trace has rows such as p99 > p100 from rounding;
//! - the public 14-day release has memory files for days 1–12 only: a day without its memory
//!   file uses the nearest earlier day's file, else the nearest later one; no memory file at all
//!   is an error;
//! - duplicate rows in a durations or memory file: the first wins;
//! - errors: a missing file or column, an empty file, a header with no data rows, a ragged row
//!   (field count differs from the header), a count that is not a non-negative integer (a
//!   fractional part of zeros, such as `3.0`, is accepted), a duplicate function within one
//!   day's invocation file, and a memory value or duration that is not a finite non-negative
//!   number are reported as [`TraceError`] naming file, line and column, never a panic.

use super::{DurationTable, FunctionDay, FunctionMeta, TraceDay, TraceError, TraceSource};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Cursor};
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// File name of the invocation counts in the one-day layout.
pub const ONE_DAY_INVOCATIONS: &str = "invocations_per_function.csv";
/// File name of the duration percentiles in the one-day layout.
pub const ONE_DAY_DURATIONS: &str = "function_durations.csv";
/// File name of the app memory in the one-day layout.
pub const ONE_DAY_MEMORY: &str = "app_memory.csv";

/// File name of day `day`'s invocation counts in the 14-day layout (`day` is 1-based).
pub fn invocations_file_name(day: u32) -> String {
    format!("invocations_per_function_md.anon.d{day:02}.csv")
}

/// File name of day `day`'s duration percentiles in the 14-day layout (`day` is 1-based).
pub fn durations_file_name(day: u32) -> String {
    format!("function_durations_percentiles.anon.d{day:02}.csv")
}

/// File name of day `day`'s app memory in the 14-day layout (`day` is 1-based).
pub fn memory_file_name(day: u32) -> String {
    format!("app_memory_percentiles.anon.d{day:02}.csv")
}

/// Parses a day selection: `"1-14"`, `"3"` or `"2..=5"`; days are 1-based and the range must
/// not be empty.
pub fn parse_days(s: &str) -> Result<RangeInclusive<u32>, String> {
    let s = s.trim();
    let parse = |x: &str| {
        x.trim()
            .parse::<u32>()
            .map_err(|_| format!("invalid day `{}` in `{s}` (expected e.g. 1-14)", x.trim()))
    };
    let (a, b) = if let Some((a, b)) = s.split_once("..=") {
        (parse(a)?, parse(b)?)
    } else if let Some((a, b)) = s.split_once('-') {
        (parse(a)?, parse(b)?)
    } else {
        let d = parse(s)?;
        (d, d)
    };
    if a == 0 {
        return Err(format!("days are numbered from 1, got `{s}`"));
    }
    if a > b {
        return Err(format!("empty day range `{s}`"));
    }
    Ok(a..=b)
}

/// Which of the two Azure layouts a directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AzureLayout {
    /// Three files for one day (`invocations_per_function.csv`, ...).
    OneDay,
    /// One triple of `*.anon.dNN.csv` files per day.
    MultiDay,
}

/// The three files of one day.
#[derive(Debug, Clone)]
struct DayFiles {
    /// The day number in file names (1-based; 1 for the one-day layout).
    file_day: u32,
    invocations: PathBuf,
    durations: PathBuf,
    memory: PathBuf,
}

/// The three files of one day, held in memory (see [`AzureTrace::from_bytes`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayBytes {
    /// Content of the invocation counts file.
    pub invocations: Vec<u8>,
    /// Content of the duration percentiles file.
    pub durations: Vec<u8>,
    /// Content of the app memory file.
    pub memory: Vec<u8>,
}

/// Where the files named by [`DayFiles`] are read from.
#[derive(Clone)]
enum Source {
    /// The file system.
    Disk,
    /// In-memory contents, by the path they stand for.
    Memory(HashMap<PathBuf, Arc<[u8]>>),
}

/// A function first seen on the day being read, waiting for its metadata.
struct Pending {
    owner: String,
    app: String,
    id: String,
    trigger: Option<String>,
    /// Key of its app (`owner \x1f app`).
    app_key: Vec<u8>,
}

/// A streaming reader of an Azure Functions 2019 trace directory; see the module docs for the
/// rules it applies.
pub struct AzureTrace {
    dir: PathBuf,
    source: Source,
    layout: AzureLayout,
    days: Vec<DayFiles>,
    next: usize,
    /// Minute columns per day, fixed by the first day read.
    minutes: Option<u32>,
    /// Function key (`owner \x1f app \x1f function`) -> dense index.
    index: HashMap<Box<[u8]>, u32>,
    /// Per function: (selection day + 1 it was last seen in, line of that row).
    last_seen: Vec<(u32, u64)>,
    median_durations: Option<DurationTable>,
    median_memory: Option<f64>,
    line: Vec<u8>,
    fields: Vec<Range<usize>>,
    key: Vec<u8>,
}

impl std::fmt::Debug for AzureTrace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureTrace")
            .field("dir", &self.dir)
            .field("layout", &self.layout)
            .field("days", &self.file_days())
            .field("next", &self.next)
            .field("functions", &self.index.len())
            .finish()
    }
}

fn io_err(path: &Path, source: std::io::Error) -> TraceError {
    TraceError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn parse_err(path: &Path, line: u64, column: u64, message: impl Into<String>) -> TraceError {
    TraceError::Parse {
        path: path.display().to_string(),
        line,
        column,
        message: message.into(),
    }
}

fn missing(path: &Path, message: impl Into<String>) -> TraceError {
    TraceError::Missing {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// Day number `NN` of a 14-day layout file name `prefix` + `NN` + `.csv`.
fn day_of(name: &str, prefix: &str) -> Option<u32> {
    let rest = name.strip_prefix(prefix)?.strip_suffix(".csv")?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

impl AzureTrace {
    /// Opens a trace directory, detecting its layout, selecting `days` (1-based, inclusive; all
    /// days present when `None`) and checking that every needed file exists and has the needed
    /// columns. Nothing else is read until [`TraceSource::next_day`].
    pub fn open(dir: &Path, days: Option<RangeInclusive<u32>>) -> Result<Self, TraceError> {
        let meta = std::fs::metadata(dir).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                missing(dir, "trace directory not found")
            } else {
                io_err(dir, e)
            }
        })?;
        if !meta.is_dir() {
            return Err(missing(
                dir,
                "not a directory: a trace is a directory of Azure Functions 2019 CSV files",
            ));
        }
        let (layout, day_files) = if dir.join(ONE_DAY_INVOCATIONS).exists() {
            if let Some(r) = &days {
                if *r != (1..=1) {
                    return Err(missing(
                        &dir.join(ONE_DAY_INVOCATIONS),
                        format!(
                            "days {}-{} requested, but this is a one-day trace (day 1 only)",
                            r.start(),
                            r.end()
                        ),
                    ));
                }
            }
            let f = DayFiles {
                file_day: 1,
                invocations: dir.join(ONE_DAY_INVOCATIONS),
                durations: dir.join(ONE_DAY_DURATIONS),
                memory: dir.join(ONE_DAY_MEMORY),
            };
            (AzureLayout::OneDay, vec![f])
        } else {
            (AzureLayout::MultiDay, Self::multi_day_files(dir, days)?)
        };
        for f in &day_files {
            for (p, what) in [
                (&f.invocations, "invocation counts"),
                (&f.durations, "duration percentiles"),
                (&f.memory, "app memory"),
            ] {
                if !p.is_file() {
                    return Err(missing(p, format!("{what} of day {}", f.file_day)));
                }
            }
        }
        Self::with_files(dir, Source::Disk, layout, day_files)
    }

    /// Reads a trace held in memory, with the same rules and errors as [`AzureTrace::open`]:
    /// one [`DayBytes`] is the one-day layout, several are days 1..=N of the 14-day layout
    /// (each with its own memory file). Errors name the files as they would be named in a
    /// directory called `<memory>`.
    pub fn from_bytes(days: Vec<DayBytes>) -> Result<Self, TraceError> {
        let dir = Path::new("<memory>");
        let mut contents = HashMap::new();
        let mut day_files = Vec::with_capacity(days.len());
        let layout = if days.len() == 1 {
            AzureLayout::OneDay
        } else {
            AzureLayout::MultiDay
        };
        for (i, d) in days.into_iter().enumerate() {
            let file_day = i as u32 + 1;
            let f = match layout {
                AzureLayout::OneDay => DayFiles {
                    file_day,
                    invocations: dir.join(ONE_DAY_INVOCATIONS),
                    durations: dir.join(ONE_DAY_DURATIONS),
                    memory: dir.join(ONE_DAY_MEMORY),
                },
                AzureLayout::MultiDay => DayFiles {
                    file_day,
                    invocations: dir.join(invocations_file_name(file_day)),
                    durations: dir.join(durations_file_name(file_day)),
                    memory: dir.join(memory_file_name(file_day)),
                },
            };
            contents.insert(f.invocations.clone(), Arc::from(d.invocations));
            contents.insert(f.durations.clone(), Arc::from(d.durations));
            contents.insert(f.memory.clone(), Arc::from(d.memory));
            day_files.push(f);
        }
        if day_files.is_empty() {
            return Err(missing(
                &dir.join(ONE_DAY_INVOCATIONS),
                "no days given: an in-memory trace needs at least one day's three files",
            ));
        }
        Self::with_files(dir, Source::Memory(contents), layout, day_files)
    }

    /// A reader of `day_files` (present in `source`), after checking every file's header.
    fn with_files(
        dir: &Path,
        source: Source,
        layout: AzureLayout,
        day_files: Vec<DayFiles>,
    ) -> Result<Self, TraceError> {
        let mut t = Self {
            dir: dir.to_path_buf(),
            source,
            layout,
            days: day_files,
            next: 0,
            minutes: None,
            index: HashMap::new(),
            last_seen: Vec::new(),
            median_durations: None,
            median_memory: None,
            line: Vec::with_capacity(1 << 14),
            fields: Vec::with_capacity(1500),
            key: Vec::with_capacity(256),
        };
        // Check every header now, so that a missing column fails before any simulation.
        for i in 0..t.days.len() {
            let f = t.days[i].clone();
            let mut r = t.reader(&f.invocations)?;
            t.header(&mut r)?;
            InvCols::find(&r.path, &header_names(&t.line, &t.fields))?;
            let mut r = t.reader(&f.durations)?;
            t.header(&mut r)?;
            DurCols::find(&r.path, &header_names(&t.line, &t.fields))?;
            let mut r = t.reader(&f.memory)?;
            t.header(&mut r)?;
            MemCols::find(&r.path, &header_names(&t.line, &t.fields))?;
        }
        Ok(t)
    }

    fn multi_day_files(
        dir: &Path,
        days: Option<RangeInclusive<u32>>,
    ) -> Result<Vec<DayFiles>, TraceError> {
        let mut inv_days = Vec::new();
        let mut mem_days = Vec::new();
        for e in std::fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
            let e = e.map_err(|e| io_err(dir, e))?;
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(d) = day_of(name, "invocations_per_function_md.anon.d") {
                inv_days.push(d);
            }
            if let Some(d) = day_of(name, "app_memory_percentiles.anon.d") {
                mem_days.push(d);
            }
        }
        inv_days.sort_unstable();
        mem_days.sort_unstable();
        let range = match days {
            Some(r) => r,
            None => match (inv_days.first(), inv_days.last()) {
                (Some(&a), Some(&b)) => a..=b,
                _ => {
                    return Err(missing(
                        &dir.join(ONE_DAY_INVOCATIONS),
                        "no Azure trace here: expected invocations_per_function.csv (one-day \
                         layout) or invocations_per_function_md.anon.dNN.csv (14-day layout)",
                    ))
                }
            },
        };
        if range.is_empty() || *range.start() == 0 {
            return Err(missing(
                &dir.join(invocations_file_name(*range.start())),
                format!(
                    "invalid day selection {}-{} (days are 1-based, start <= end)",
                    range.start(),
                    range.end()
                ),
            ));
        }
        let mut out = Vec::new();
        for d in range {
            let inv = dir.join(invocations_file_name(d));
            if inv_days.binary_search(&d).is_err() {
                return Err(missing(&inv, format!("invocation counts of day {d}")));
            }
            let mem_day = if mem_days.binary_search(&d).is_ok() {
                d
            } else if let Some(&e) = mem_days.iter().rev().find(|&&m| m < d) {
                e
            } else if let Some(&l) = mem_days.iter().find(|&&m| m > d) {
                l
            } else {
                d // reported as missing by `open`
            };
            out.push(DayFiles {
                file_day: d,
                invocations: inv,
                durations: dir.join(durations_file_name(d)),
                memory: dir.join(memory_file_name(mem_day)),
            });
        }
        Ok(out)
    }

    /// The layout detected in the directory.
    pub fn layout(&self) -> AzureLayout {
        self.layout
    }

    /// The selected days, as numbered in the file names (1-based), in reading order.
    pub fn file_days(&self) -> Vec<u32> {
        self.days.iter().map(|d| d.file_day).collect()
    }

    /// Number of functions seen so far (the next dense index).
    pub fn functions_seen(&self) -> u32 {
        self.index.len() as u32
    }

    fn reader(&self, path: &Path) -> Result<LineReader, TraceError> {
        match &self.source {
            Source::Disk => LineReader::open(path),
            Source::Memory(files) => match files.get(path) {
                Some(bytes) => Ok(LineReader::from_bytes(path, bytes.clone())),
                None => Err(missing(path, "file not found")),
            },
        }
    }

    /// Reads the header line into `self.line` / `self.fields`; an empty file is an error.
    fn header(&mut self, r: &mut LineReader) -> Result<(), TraceError> {
        if !r.next(&mut self.line, &mut self.fields)? {
            return Err(parse_err(&r.path, 1, 0, "empty file (no header line)"));
        }
        Ok(())
    }

    fn read_day(&mut self, pos: usize) -> Result<TraceDay, TraceError> {
        let files = self.days[pos].clone();
        let day_mark = pos as u32 + 1;
        let mut r = self.reader(&files.invocations)?;
        self.header(&mut r)?;
        let cols = InvCols::find(&r.path, &header_names(&self.line, &self.fields))?;
        let n_fields = self.fields.len();
        let minutes = cols.minute_cols.len() as u32;
        match self.minutes {
            None => self.minutes = Some(minutes),
            Some(m) if m != minutes => {
                return Err(parse_err(
                    &r.path,
                    1,
                    0,
                    format!("{minutes} minute columns, but earlier days have {m}"),
                ))
            }
            Some(_) => {}
        }
        let start_minute = pos as u32 * minutes;
        let mut rows: Vec<FunctionDay> = Vec::new();
        let mut pending: Vec<Pending> = Vec::new();
        let mut app_counts: HashMap<Vec<u8>, u32> = HashMap::new();
        let mut data_rows = 0u64;
        while r.next(&mut self.line, &mut self.fields)? {
            let line_no = r.line_no;
            data_rows += 1;
            if self.fields.len() != n_fields {
                return Err(parse_err(
                    &r.path,
                    line_no,
                    0,
                    format!(
                        "ragged row: {} fields, the header has {n_fields}",
                        self.fields.len()
                    ),
                ));
            }
            let line = &self.line;
            let owner = field(line, &self.fields[cols.owner]);
            let app = field(line, &self.fields[cols.app]);
            let func = field(line, &self.fields[cols.function]);
            self.key.clear();
            self.key.extend_from_slice(owner);
            self.key.push(0x1f);
            self.key.extend_from_slice(app);
            let app_key_len = self.key.len();
            *app_counts.entry(self.key.clone()).or_insert(0) += 1;
            self.key.push(0x1f);
            self.key.extend_from_slice(func);
            let idx = match self.index.get(&self.key[..]) {
                Some(&i) => {
                    let (seen_day, seen_line) = self.last_seen[i as usize];
                    if seen_day == day_mark {
                        return Err(parse_err(
                            &r.path,
                            line_no,
                            cols.function as u64 + 1,
                            format!(
                                "duplicate function {} (owner {}, app {}): already on line \
                                 {seen_line}",
                                lossy(func),
                                lossy(owner),
                                lossy(app)
                            ),
                        ));
                    }
                    self.last_seen[i as usize] = (day_mark, line_no);
                    i
                }
                None => {
                    let i = self.index.len() as u32;
                    self.index.insert(self.key.clone().into_boxed_slice(), i);
                    self.last_seen.push((day_mark, line_no));
                    pending.push(Pending {
                        owner: lossy(owner),
                        app: lossy(app),
                        id: lossy(func),
                        trigger: cols.trigger.map(|t| lossy(field(line, &self.fields[t]))),
                        app_key: self.key[..app_key_len].to_vec(),
                    });
                    i
                }
            };
            let mut bins = Vec::new();
            for (m, &c) in cols.minute_cols.iter().enumerate() {
                let v = parse_count(field(line, &self.fields[c]))
                    .map_err(|msg| parse_err(&r.path, line_no, c as u64 + 1, msg))?;
                if v > 0 {
                    bins.push((start_minute + m as u32, v));
                }
            }
            if !bins.is_empty() {
                rows.push(FunctionDay {
                    function: idx,
                    bins,
                });
            }
        }
        if data_rows == 0 {
            return Err(parse_err(
                &r.path,
                2,
                0,
                "no function rows after the header",
            ));
        }
        rows.sort_unstable_by_key(|f| f.function);
        let new_functions = if pending.is_empty() {
            Vec::new()
        } else {
            self.metadata(&files, pending, &app_counts)?
        };
        Ok(TraceDay {
            day: pos as u32,
            start_minute,
            minutes,
            new_functions,
            rows,
        })
    }

    /// Metadata for the functions first seen on this day.
    fn metadata(
        &mut self,
        files: &DayFiles,
        pending: Vec<Pending>,
        app_counts: &HashMap<Vec<u8>, u32>,
    ) -> Result<Vec<FunctionMeta>, TraceError> {
        // Durations of the new functions.
        let mut want: HashMap<Vec<u8>, usize> = HashMap::with_capacity(pending.len());
        for (i, p) in pending.iter().enumerate() {
            let mut k = p.app_key.clone();
            k.push(0x1f);
            k.extend_from_slice(p.id.as_bytes());
            want.insert(k, i);
        }
        let mut tables: Vec<Option<DurationTable>> = vec![None; pending.len()];
        self.scan_durations(&files.durations, |key, _line, table| {
            if let Some(&i) = want.get(key) {
                if tables[i].is_none() {
                    tables[i] = Some(table);
                }
            }
            true
        })?;
        // Memory of their apps.
        let mut app_mem: HashMap<Vec<u8>, Option<f64>> =
            pending.iter().map(|p| (p.app_key.clone(), None)).collect();
        self.scan_memory(&files.memory, |key, mb| {
            if let Some(slot) = app_mem.get_mut(key) {
                if slot.is_none() {
                    *slot = Some(mb);
                }
            }
        })?;
        let mut out = Vec::with_capacity(pending.len());
        for (p, t) in pending.into_iter().zip(tables) {
            let durations = match t {
                Some(t) => t,
                None => self.median_durations()?,
            };
            let app_mb = match app_mem.get(&p.app_key).copied().flatten() {
                Some(m) => m,
                None => self.median_memory()?,
            };
            let n = app_counts.get(&p.app_key).copied().unwrap_or(1).max(1);
            out.push(FunctionMeta {
                id: p.id,
                app: p.app,
                owner: p.owner,
                trigger: p.trigger,
                memory_mb: app_mb / n as f64,
                durations,
            });
        }
        Ok(out)
    }

    /// Streams a durations file, calling `f(key, line, table)` per data row until it returns
    /// false.
    fn scan_durations(
        &mut self,
        path: &Path,
        mut f: impl FnMut(&[u8], u64, DurationTable) -> bool,
    ) -> Result<(), TraceError> {
        let mut r = self.reader(path)?;
        self.header(&mut r)?;
        let cols = DurCols::find(&r.path, &header_names(&self.line, &self.fields))?;
        let n_fields = self.fields.len();
        let mut key = Vec::with_capacity(256);
        while r.next(&mut self.line, &mut self.fields)? {
            let line_no = r.line_no;
            check_width(&r.path, line_no, self.fields.len(), n_fields)?;
            let line = &self.line;
            let mut pct = [0.0; 7];
            for (k, &c) in cols.pct.iter().enumerate() {
                let v = parse_number(field(line, &self.fields[c]))
                    .map_err(|m| parse_err(&r.path, line_no, c as u64 + 1, m))?;
                pct[k] = if k > 0 { v.max(pct[k - 1]) } else { v };
            }
            key.clear();
            key.extend_from_slice(field(line, &self.fields[cols.owner]));
            key.push(0x1f);
            key.extend_from_slice(field(line, &self.fields[cols.app]));
            key.push(0x1f);
            key.extend_from_slice(field(line, &self.fields[cols.function]));
            if !f(&key, line_no, DurationTable { pct }) {
                break;
            }
        }
        Ok(())
    }

    /// Streams a memory file, calling `f(app_key, average_allocated_mb)` per data row.
    fn scan_memory(
        &mut self,
        path: &Path,
        mut f: impl FnMut(&[u8], f64),
    ) -> Result<(), TraceError> {
        let mut r = self.reader(path)?;
        self.header(&mut r)?;
        let cols = MemCols::find(&r.path, &header_names(&self.line, &self.fields))?;
        let n_fields = self.fields.len();
        let mut key = Vec::with_capacity(256);
        while r.next(&mut self.line, &mut self.fields)? {
            let line_no = r.line_no;
            check_width(&r.path, line_no, self.fields.len(), n_fields)?;
            let line = &self.line;
            let mb = parse_number(field(line, &self.fields[cols.mb]))
                .map_err(|m| parse_err(&r.path, line_no, cols.mb as u64 + 1, m))?;
            key.clear();
            key.extend_from_slice(field(line, &self.fields[cols.owner]));
            key.push(0x1f);
            key.extend_from_slice(field(line, &self.fields[cols.app]));
            f(&key, mb);
        }
        Ok(())
    }

    /// The trace-wide median function's duration table (computed once, on first need).
    fn median_durations(&mut self) -> Result<DurationTable, TraceError> {
        if let Some(t) = self.median_durations {
            return Ok(t);
        }
        let paths: Vec<PathBuf> = self.days.iter().map(|d| d.durations.clone()).collect();
        let mut p50s = Vec::new();
        for p in &paths {
            self.scan_durations(p, |_, _, t| {
                p50s.push(t.pct[3]);
                true
            })?;
        }
        if p50s.is_empty() {
            return Err(missing(
                &paths[0],
                "a function has no duration row and the durations files have no rows to take \
                 the median function from",
            ));
        }
        p50s.sort_unstable_by(f64::total_cmp);
        let m = p50s[(p50s.len() - 1) / 2];
        let mut found = None;
        for p in &paths {
            self.scan_durations(p, |_, _, t| {
                if t.pct[3] == m {
                    found = Some(t);
                    false
                } else {
                    true
                }
            })?;
            if found.is_some() {
                break;
            }
        }
        let t = found.unwrap_or(DurationTable::constant(m));
        self.median_durations = Some(t);
        Ok(t)
    }

    /// The trace-wide median app memory in MB (computed once, on first need).
    fn median_memory(&mut self) -> Result<f64, TraceError> {
        if let Some(m) = self.median_memory {
            return Ok(m);
        }
        let mut paths: Vec<PathBuf> = self.days.iter().map(|d| d.memory.clone()).collect();
        paths.dedup();
        let mut v = Vec::new();
        for p in &paths {
            self.scan_memory(p, |_, mb| v.push(mb))?;
        }
        if v.is_empty() {
            return Err(missing(
                &paths[0],
                "an app has no memory row and the memory files have no rows to take the median \
                 from",
            ));
        }
        v.sort_unstable_by(f64::total_cmp);
        let n = v.len();
        let m = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        self.median_memory = Some(m);
        Ok(m)
    }
}

impl TraceSource for AzureTrace {
    fn next_day(&mut self) -> Result<Option<TraceDay>, TraceError> {
        if self.next >= self.days.len() {
            return Ok(None);
        }
        let pos = self.next;
        let day = self.read_day(pos)?;
        self.next += 1;
        Ok(Some(day))
    }
}

fn check_width(path: &Path, line: u64, got: usize, want: usize) -> Result<(), TraceError> {
    if got != want {
        return Err(parse_err(
            path,
            line,
            0,
            format!("ragged row: {got} fields, the header has {want}"),
        ));
    }
    Ok(())
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The bytes of a field, without surrounding spaces and double quotes.
fn field<'a>(line: &'a [u8], r: &Range<usize>) -> &'a [u8] {
    let mut f = line[r.clone()].trim_ascii();
    if f.len() >= 2 && f[0] == b'"' && f[f.len() - 1] == b'"' {
        f = &f[1..f.len() - 1];
    }
    f
}

/// A non-negative integer count; `7` and `7.0` are accepted, `7.5`, `-1`, `x` and `` are not.
fn parse_count(f: &[u8]) -> Result<u32, String> {
    if f.is_empty() {
        return Err("empty count".into());
    }
    let mut v: u64 = 0;
    let mut i = 0;
    while i < f.len() && f[i].is_ascii_digit() {
        v = v * 10 + u64::from(f[i] - b'0');
        if v > u64::from(u32::MAX) {
            return Err(format!("count `{}` too large", lossy(f)));
        }
        i += 1;
    }
    if i == f.len() && i > 0 {
        return Ok(v as u32);
    }
    if i > 0 && f[i] == b'.' && f[i + 1..].iter().all(|&b| b == b'0') {
        return Ok(v as u32);
    }
    if f[0] == b'-' {
        return Err(format!("negative count `{}`", lossy(f)));
    }
    Err(format!(
        "count `{}` is not a non-negative integer",
        lossy(f)
    ))
}

/// A finite non-negative number (memory in MB, duration in ms).
fn parse_number(f: &[u8]) -> Result<f64, String> {
    let s = std::str::from_utf8(f).map_err(|_| "not a number (invalid UTF-8)".to_string())?;
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(_) => Err(format!("`{s}` is not a finite non-negative number")),
        Err(_) => Err(format!("`{s}` is not a number")),
    }
}

/// The header's column names, trimmed of spaces and double quotes.
fn header_names(line: &[u8], fields: &[Range<usize>]) -> Vec<String> {
    fields.iter().map(|r| lossy(field(line, r))).collect()
}

fn find_col(path: &Path, header: &[String], name: &str) -> Result<usize, TraceError> {
    header
        .iter()
        .position(|h| h.eq_ignore_ascii_case(name))
        .ok_or_else(|| parse_err(path, 1, 0, format!("missing column `{name}` in the header")))
}

/// Column positions of an invocation file.
struct InvCols {
    owner: usize,
    app: usize,
    function: usize,
    trigger: Option<usize>,
    /// Column of minute 1, 2, ..., N.
    minute_cols: Vec<usize>,
}

impl InvCols {
    fn find(path: &Path, header: &[String]) -> Result<Self, TraceError> {
        let owner = find_col(path, header, "HashOwner")?;
        let app = find_col(path, header, "HashApp")?;
        let function = find_col(path, header, "HashFunction")?;
        let trigger = find_col(path, header, "Trigger").ok();
        let mut by_minute: Vec<Option<usize>> = Vec::new();
        for (c, name) in header.iter().enumerate() {
            let name = name.as_str();
            let digits = match name.get(..7) {
                Some(p) if p.eq_ignore_ascii_case("minute_") => &name[7..],
                _ => name,
            };
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let m: usize = match digits.parse() {
                Ok(m) if (1..=100_000).contains(&m) => m,
                _ => {
                    return Err(parse_err(
                        path,
                        1,
                        c as u64 + 1,
                        format!("minute column `{name}` out of range"),
                    ))
                }
            };
            if by_minute.len() < m {
                by_minute.resize(m, None);
            }
            if by_minute[m - 1].is_some() {
                return Err(parse_err(
                    path,
                    1,
                    c as u64 + 1,
                    format!("minute column `{name}` appears twice"),
                ));
            }
            by_minute[m - 1] = Some(c);
        }
        if by_minute.is_empty() {
            return Err(parse_err(
                path,
                1,
                0,
                "missing minute columns (`1..1440` or `minute_1..minute_1440`)",
            ));
        }
        let mut minute_cols = Vec::with_capacity(by_minute.len());
        for (m, c) in by_minute.iter().enumerate() {
            match c {
                Some(c) => minute_cols.push(*c),
                None => {
                    return Err(parse_err(
                        path,
                        1,
                        0,
                        format!("missing minute column {}", m + 1),
                    ))
                }
            }
        }
        Ok(Self {
            owner,
            app,
            function,
            trigger,
            minute_cols,
        })
    }
}

/// Column positions of a durations file.
struct DurCols {
    owner: usize,
    app: usize,
    function: usize,
    pct: [usize; 7],
}

impl DurCols {
    fn find(path: &Path, header: &[String]) -> Result<Self, TraceError> {
        let mut pct = [0; 7];
        for (i, p) in [0, 1, 25, 50, 75, 99, 100].iter().enumerate() {
            pct[i] = find_col(path, header, &format!("percentile_Average_{p}"))?;
        }
        Ok(Self {
            owner: find_col(path, header, "HashOwner")?,
            app: find_col(path, header, "HashApp")?,
            function: find_col(path, header, "HashFunction")?,
            pct,
        })
    }
}

/// Column positions of a memory file.
struct MemCols {
    owner: usize,
    app: usize,
    mb: usize,
}

impl MemCols {
    fn find(path: &Path, header: &[String]) -> Result<Self, TraceError> {
        Ok(Self {
            owner: find_col(path, header, "HashOwner")?,
            app: find_col(path, header, "HashApp")?,
            mb: find_col(path, header, "AverageAllocatedMb")?,
        })
    }
}

/// The bytes behind a [`LineReader`].
enum Input {
    File(BufReader<File>),
    Bytes(Cursor<Arc<[u8]>>),
}

/// Reads non-blank lines and splits them on commas, reusing the caller's buffers.
struct LineReader {
    path: PathBuf,
    inner: Input,
    /// 1-based number of the line last read.
    line_no: u64,
}

impl LineReader {
    fn open(path: &Path) -> Result<Self, TraceError> {
        let f = File::open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                missing(path, "file not found")
            } else {
                io_err(path, e)
            }
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            inner: Input::File(BufReader::with_capacity(1 << 16, f)),
            line_no: 0,
        })
    }

    /// A reader of in-memory content standing for the file at `path`.
    fn from_bytes(path: &Path, bytes: Arc<[u8]>) -> Self {
        Self {
            path: path.to_path_buf(),
            inner: Input::Bytes(Cursor::new(bytes)),
            line_no: 0,
        }
    }

    /// Reads the next non-blank line into `line` (without its end of line) and its field
    /// ranges into `fields`; false at the end of the file.
    fn next(
        &mut self,
        line: &mut Vec<u8>,
        fields: &mut Vec<Range<usize>>,
    ) -> Result<bool, TraceError> {
        loop {
            line.clear();
            let n = match &mut self.inner {
                Input::File(r) => r.read_until(b'\n', line),
                Input::Bytes(r) => r.read_until(b'\n', line),
            }
            .map_err(|e| io_err(&self.path, e))?;
            if n == 0 {
                return Ok(false);
            }
            self.line_no += 1;
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            if self.line_no == 1 && line.starts_with(&[0xEF, 0xBB, 0xBF]) {
                line.drain(..3);
            }
            if line.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            fields.clear();
            let mut start = 0;
            for (i, &b) in line.iter().enumerate() {
                if b == b',' {
                    fields.push(start..i);
                    start = i + 1;
                }
            }
            fields.push(start..line.len());
            return Ok(true);
        }
    }
}
