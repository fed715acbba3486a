//! Azure trace reader rules and error reporting, on small hand-written trace directories.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use prewarm_simulator::trace::azure::{parse_days, AzureLayout, AzureTrace, DayBytes};
use prewarm_simulator::trace::{count_trace, TraceDay, TraceError, TraceSource};
use std::path::Path;

const DUR_HEADER: &str = "HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,\
percentile_Average_0,percentile_Average_1,percentile_Average_25,percentile_Average_50,\
percentile_Average_75,percentile_Average_99,percentile_Average_100";
const MEM_HEADER: &str = "HashOwner,HashApp,SampleCount,AverageAllocatedMb,\
AverageAllocatedMb_pct1,AverageAllocatedMb_pct5";

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// A one-day trace of 4 minutes: app A (o1) has f1, f2 and f4 (f4 never invoked); app B (o2)
/// has f3 and no memory row; f3 has no duration row.
fn one_day(dir: &Path) {
    write(
        dir,
        "invocations_per_function.csv",
        "HashFunction,HashOwner,HashApp,minute_1,minute_2,minute_3,minute_4\n\
         f1,o1,A,0,2,0,1\n\
         f2,o1,A,5,0,0,0\n\
         f3,o2,B,0,0,0,7\n\
         f4,o1,A,0,0,0,0\n",
    );
    write(
        dir,
        "function_durations.csv",
        &format!(
            "{DUR_HEADER}\n\
             o1,A,f1,0,0,0,0,10,12,15,20,30,90,80\n\
             o1,A,f2,0,0,0,0,40,41,45,50,55,60,70\n\
             o9,Z,x,0,0,0,0,1,2,3,40,50,60,70\n\
             o9,Z,y,0,0,0,0,1,2,3,40,51,61,71\n"
        ),
    );
    write(
        dir,
        "app_memory.csv",
        &format!("{MEM_HEADER}\no1,A,10,300,1,1\no8,C,10,100,1,1\no7,D,10,50,1,1\n"),
    );
}

fn open(dir: &Path) -> AzureTrace {
    AzureTrace::open(dir, None).unwrap()
}

fn read_all(t: &mut AzureTrace) -> Vec<TraceDay> {
    let mut v = Vec::new();
    while let Some(d) = t.next_day().unwrap() {
        v.push(d);
    }
    v
}

#[test]
fn one_day_rules() {
    let tmp = tempfile::tempdir().unwrap();
    one_day(tmp.path());
    let mut t = open(tmp.path());
    assert_eq!(t.layout(), AzureLayout::OneDay);
    assert_eq!(t.file_days(), vec![1]);
    let days = read_all(&mut t);
    assert_eq!(days.len(), 1);
    let d = &days[0];
    assert_eq!((d.day, d.start_minute, d.minutes), (0, 0, 4));
    let ids: Vec<&str> = d.new_functions.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, ["f1", "f2", "f3", "f4"]);
    // Memory: app A's 300 MB over its 3 functions in the file; app B has no row, so the median
    // of (300, 100, 50) = 100 MB, over its 1 function.
    let mem: Vec<f64> = d.new_functions.iter().map(|f| f.memory_mb).collect();
    assert_eq!(mem, [100.0, 100.0, 100.0, 100.0]);
    // f1's p100 (80) < p99 (90): running maximum makes it 90.
    assert_eq!(
        d.new_functions[0].durations.pct,
        [10.0, 12.0, 15.0, 20.0, 30.0, 90.0, 90.0]
    );
    // f3 has no row: p50s are (20, 50, 40, 40); lower median 40, first such row is x.
    assert_eq!(
        d.new_functions[2].durations.pct,
        [1.0, 2.0, 3.0, 40.0, 50.0, 60.0, 70.0]
    );
    assert_eq!(d.new_functions[0].owner, "o1");
    assert_eq!(d.new_functions[0].app, "A");
    // Sparse rows, ascending function index; f4 (all zero) has no row.
    let rows: Vec<(u32, Vec<(u32, u32)>)> = d
        .rows
        .iter()
        .map(|r| (r.function, r.bins.clone()))
        .collect();
    assert_eq!(
        rows,
        vec![
            (0, vec![(1, 2), (3, 1)]),
            (1, vec![(0, 5)]),
            (2, vec![(3, 7)])
        ]
    );
}

#[test]
fn count_trace_totals() {
    let tmp = tempfile::tempdir().unwrap();
    one_day(tmp.path());
    let c = count_trace(&mut open(tmp.path())).unwrap();
    assert_eq!(
        (
            c.functions,
            c.invoked_functions,
            c.invocations,
            c.minutes,
            c.days
        ),
        (4, 3, 15, 4, 1)
    );
}

/// Three days of 3 minutes in the 14-day layout; day 3 has no memory file.
fn multi_day(dir: &Path) {
    let h = "HashOwner,HashApp,HashFunction,Trigger,1,2,3";
    write(
        dir,
        "invocations_per_function_md.anon.d01.csv",
        &format!("{h}\no1,A,f1,http,1,0,0\no1,A,f2,timer,0,0,3\n"),
    );
    write(
        dir,
        "invocations_per_function_md.anon.d02.csv",
        &format!("{h}\no1,A,f3,queue,0,4,0\no1,A,f2,timer,2,0,0\no1,A,f1,http,0,0,1\n"),
    );
    write(
        dir,
        "invocations_per_function_md.anon.d03.csv",
        &format!("{h}\no2,B,g1,http,1,1,1\no1,A,f1,http,1,0,0\n"),
    );
    for d in 1..=3 {
        write(
            dir,
            &format!("function_durations_percentiles.anon.d{d:02}.csv"),
            &format!(
                "{DUR_HEADER}\no1,A,f1,0,0,0,0,{d},{d},{d},{d},{d},{d},{d}\n\
                 o1,A,f2,0,0,0,0,5,5,5,5,5,5,5\no1,A,f3,0,0,0,0,6,6,6,6,6,6,6\n\
                 o2,B,g1,0,0,0,0,7,7,7,7,7,7,7\n"
            ),
        );
    }
    write(
        dir,
        "app_memory_percentiles.anon.d01.csv",
        &format!("{MEM_HEADER}\no1,A,1,600,1,1\no2,B,1,10,1,1\n"),
    );
    write(
        dir,
        "app_memory_percentiles.anon.d02.csv",
        &format!("{MEM_HEADER}\no1,A,1,900,1,1\no2,B,1,20,1,1\n"),
    );
}

#[test]
fn multi_day_rules() {
    let tmp = tempfile::tempdir().unwrap();
    multi_day(tmp.path());
    let mut t = open(tmp.path());
    assert_eq!(t.layout(), AzureLayout::MultiDay);
    assert_eq!(t.file_days(), vec![1, 2, 3]);
    let days = read_all(&mut t);
    assert_eq!(days.len(), 3);
    // Day 1: f1, f2 of app A (600 MB / 2).
    let d = &days[0];
    assert_eq!((d.day, d.start_minute, d.minutes), (0, 0, 3));
    assert_eq!(d.new_functions.len(), 2);
    assert_eq!(d.new_functions[0].trigger.as_deref(), Some("http"));
    assert_eq!(d.new_functions[1].memory_mb, 300.0);
    assert_eq!(d.new_functions[0].durations.pct, [1.0; 7]);
    // Day 2: f3 is new (index 2); app A has 3 functions that day: 900 / 3; rows ascending.
    let d = &days[1];
    assert_eq!((d.day, d.start_minute), (1, 3));
    assert_eq!(d.new_functions.len(), 1);
    assert_eq!(d.new_functions[0].id, "f3");
    assert_eq!(d.new_functions[0].memory_mb, 300.0);
    let rows: Vec<(u32, Vec<(u32, u32)>)> = d
        .rows
        .iter()
        .map(|r| (r.function, r.bins.clone()))
        .collect();
    assert_eq!(
        rows,
        vec![(0, vec![(5, 1)]), (1, vec![(3, 2)]), (2, vec![(4, 4)])]
    );
    // Day 3: g1 (index 3) takes app B's memory from day 2's file (day 3 has none).
    let d = &days[2];
    assert_eq!(d.start_minute, 6);
    assert_eq!(d.new_functions[0].id, "g1");
    assert_eq!(d.new_functions[0].memory_mb, 20.0);
    assert_eq!(d.new_functions[0].durations.pct, [7.0; 7]);
    let rows: Vec<(u32, Vec<(u32, u32)>)> = d
        .rows
        .iter()
        .map(|r| (r.function, r.bins.clone()))
        .collect();
    assert_eq!(
        rows,
        vec![(0, vec![(6, 1)]), (3, vec![(6, 1), (7, 1), (8, 1)])]
    );
}

#[test]
fn multi_day_selection_starts_at_minute_zero() {
    let tmp = tempfile::tempdir().unwrap();
    multi_day(tmp.path());
    let mut t = AzureTrace::open(tmp.path(), Some(2..=3)).unwrap();
    assert_eq!(t.file_days(), vec![2, 3]);
    let days = read_all(&mut t);
    assert_eq!(days.len(), 2);
    assert_eq!((days[0].day, days[0].start_minute), (0, 0));
    let ids: Vec<&str> = days[0]
        .new_functions
        .iter()
        .map(|f| f.id.as_str())
        .collect();
    assert_eq!(ids, ["f3", "f2", "f1"]);
    assert_eq!(days[1].start_minute, 3);
    // f1 is index 2 now.
    assert_eq!(days[1].rows[0].function, 2);
    assert_eq!(days[1].rows[0].bins, vec![(3, 1)]);
}

fn err_of(r: Result<impl std::fmt::Debug, TraceError>) -> TraceError {
    r.expect_err("expected an error")
}

fn next_err(dir: &Path) -> TraceError {
    let mut t = match AzureTrace::open(dir, None) {
        Ok(t) => t,
        Err(e) => return e,
    };
    loop {
        match t.next_day() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("trace read without error"),
            Err(e) => return e,
        }
    }
}

fn assert_parse(e: TraceError, file: &str, line: u64, column: u64, needle: &str) {
    match &e {
        TraceError::Parse {
            path,
            line: l,
            column: c,
            message,
        } => {
            assert!(path.ends_with(file), "{e}");
            assert_eq!((*l, *c), (line, column), "{e}");
            assert!(message.contains(needle), "{e}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}

fn replace_in(dir: &Path, file: &str, from: &str, to: &str) {
    let p = dir.join(file);
    let s = std::fs::read_to_string(&p).unwrap();
    assert!(s.contains(from));
    std::fs::write(&p, s.replacen(from, to, 1)).unwrap();
}

const INV: &str = "invocations_per_function.csv";

#[test]
fn non_integer_count() {
    let tmp = tempfile::tempdir().unwrap();
    one_day(tmp.path());
    replace_in(tmp.path(), INV, "f2,o1,A,5,", "f2,o1,A,1.5,");
    assert_parse(
        next_err(tmp.path()),
        INV,
        3,
        4,
        "not a non-negative integer",
    );
}

#[test]
fn integral_float_count_is_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    one_day(tmp.path());
    replace_in(tmp.path(), INV, "f2,o1,A,5,", "f2,o1,A,5.0,");
    let c = count_trace(&mut open(tmp.path())).unwrap();
    assert_eq!(c.invocations, 15);
}

#[test]
fn negative_count() {
    let tmp = tempfile::tempdir().unwrap();
    one_day(tmp.path());
    replace_in(tmp.path(), INV, "f3,o2,B,0,0,0,7", "f3,o2,B,0,0,-2,7");
    assert_parse(next_err(tmp.path()), INV, 4, 6, "negative");
}

#[test]
fn empty_count_field() {
    let tmp = tempfile::tempdir().unwrap();
    one_day(tmp.path());
    replace_in(tmp.path(), INV, "f3,o2,B,0,0,0,7", "f3,o2,B,0,,0,7");
    assert_parse(next_err(tmp.path()), INV, 4, 5, "empty");
}

#[test]
fn ragged_row() {
    let tmp = tempfile::tempdir().unwrap();
    one_day(tmp.path());
    replace_in(tmp.path(), INV, "f3,o2,B,0,0,0,7", "f3,o2,B,0,0,7");
    assert_parse(next_err(tmp.path()), INV, 4, 0, "ragged");
}

#[test]
fn duplicate_function_within_a_day() {
    let tmp = tempfile::tempdir().unwrap();
    one_day(tmp.path());
    replace_in(tmp.path(), INV, "f3,o2,B,", "f1,o1,A,");
    assert_parse(next_err(tmp.path()), INV, 4, 1, "duplicate function f1");
}

#[test]
fn missing_column() {
    let tmp = tempfile::tempdir().unwrap();
    one_day(tmp.path());
    replace_in(tmp.path(), INV, "HashApp", "App");
    let e = err_of(AzureTrace::open(tmp.path(), None));
    assert_parse(e, INV, 1, 0, "HashApp");
}

#[test]
fn missing_minute_column() {
    let tmp = tempfile::tempdir().unwrap();
    one_day(tmp.path());
    replace_in(tmp.path(), INV, "minute_2,", "other,");
    let e = err_of(AzureTrace::open(tmp.path(), None));
    assert_parse(e, INV, 1, 0, "minute column 2");
}

#[test]
fn missing_duration_column() {
    let tmp = tempfile::tempdir().unwrap();
    one_day(tmp.path());
    replace_in(
        tmp.path(),
        "function_durations.csv",
        "percentile_Average_99",
        "p99",
    );
    let e = err_of(AzureTrace::open(tmp.path(), None));
    assert_parse(e, "function_durations.csv", 1, 0, "percentile_Average_99");
}

#[test]
fn empty_file() {
    let tmp = tempfile::tempdir().unwrap();
    one_day(tmp.path());
    write(tmp.path(), "app_memory.csv", "");
    let e = err_of(AzureTrace::open(tmp.path(), None));
    assert_parse(e, "app_memory.csv", 1, 0, "empty file");
}

#[test]
fn header_only_invocation_file() {
    let tmp = tempfile::tempdir().unwrap();
    one_day(tmp.path());
    write(tmp.path(), INV, "HashFunction,HashOwner,HashApp,minute_1\n");
    assert_parse(next_err(tmp.path()), INV, 2, 0, "no function rows");
}

#[test]
fn non_numeric_memory() {
    let tmp = tempfile::tempdir().unwrap();
    one_day(tmp.path());
    replace_in(tmp.path(), "app_memory.csv", "o8,C,10,100", "o8,C,10,lots");
    assert_parse(next_err(tmp.path()), "app_memory.csv", 3, 4, "not a number");
}

#[test]
fn non_numeric_duration() {
    let tmp = tempfile::tempdir().unwrap();
    one_day(tmp.path());
    replace_in(
        tmp.path(),
        "function_durations.csv",
        "o1,A,f2,0,0,0,0,40,41,45,50",
        "o1,A,f2,0,0,0,0,40,41,45,NaN",
    );
    assert_parse(
        next_err(tmp.path()),
        "function_durations.csv",
        3,
        11,
        "not a finite",
    );
}

#[test]
fn missing_files() {
    let tmp = tempfile::tempdir().unwrap();
    one_day(tmp.path());
    std::fs::remove_file(tmp.path().join("function_durations.csv")).unwrap();
    match err_of(AzureTrace::open(tmp.path(), None)) {
        TraceError::Missing { path, .. } => assert!(path.ends_with("function_durations.csv")),
        e => panic!("{e:?}"),
    }
    let tmp = tempfile::tempdir().unwrap();
    multi_day(tmp.path());
    std::fs::remove_file(tmp.path().join("invocations_per_function_md.anon.d02.csv")).unwrap();
    match err_of(AzureTrace::open(tmp.path(), None)) {
        TraceError::Missing { path, .. } => {
            assert!(path.ends_with("invocations_per_function_md.anon.d02.csv"))
        }
        e => panic!("{e:?}"),
    }
    let tmp = tempfile::tempdir().unwrap();
    multi_day(tmp.path());
    match err_of(AzureTrace::open(tmp.path(), Some(2..=5))) {
        TraceError::Missing { path, .. } => {
            assert!(path.ends_with("invocations_per_function_md.anon.d04.csv"))
        }
        e => panic!("{e:?}"),
    }
    for d in 1..=2 {
        std::fs::remove_file(
            tmp.path()
                .join(format!("app_memory_percentiles.anon.d{d:02}.csv")),
        )
        .unwrap();
    }
    match err_of(AzureTrace::open(tmp.path(), None)) {
        TraceError::Missing { path, .. } => {
            assert!(path.ends_with("app_memory_percentiles.anon.d01.csv"))
        }
        e => panic!("{e:?}"),
    }
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        err_of(AzureTrace::open(empty.path(), None)),
        TraceError::Missing { .. }
    ));
    match err_of(AzureTrace::open(&empty.path().join("nope"), None)) {
        TraceError::Missing { path, message } => {
            assert!(path.ends_with("nope"));
            assert!(message.contains("directory not found"));
        }
        e => panic!("{e:?}"),
    }
    let tmp = tempfile::tempdir().unwrap();
    one_day(tmp.path());
    match err_of(AzureTrace::open(tmp.path(), Some(1..=3))) {
        TraceError::Missing { message, .. } => assert!(message.contains("one-day trace")),
        e => panic!("{e:?}"),
    }
    assert!(AzureTrace::open(tmp.path(), Some(1..=1)).is_ok());
}

#[test]
fn minute_count_must_agree_across_days() {
    let tmp = tempfile::tempdir().unwrap();
    multi_day(tmp.path());
    write(
        tmp.path(),
        "invocations_per_function_md.anon.d02.csv",
        "HashOwner,HashApp,HashFunction,Trigger,1,2\no1,A,f1,http,1,0\n",
    );
    assert_parse(
        next_err(tmp.path()),
        "invocations_per_function_md.anon.d02.csv",
        1,
        0,
        "minute columns",
    );
}

#[test]
fn errors_display_file_line_column() {
    let tmp = tempfile::tempdir().unwrap();
    one_day(tmp.path());
    replace_in(tmp.path(), INV, "f2,o1,A,5,", "f2,o1,A,x,");
    let msg = next_err(tmp.path()).to_string();
    assert!(msg.contains("invocations_per_function.csv:3:4:"), "{msg}");
}

#[test]
fn day_ranges() {
    assert_eq!(parse_days("1-14").unwrap(), 1..=14);
    assert_eq!(parse_days("3").unwrap(), 3..=3);
    assert_eq!(parse_days("2..=5").unwrap(), 2..=5);
    assert!(parse_days("0-3").is_err());
    assert!(parse_days("5-3").is_err());
    assert!(parse_days("a-b").is_err());
}

#[test]
fn truncated_or_corrupted_files_never_panic() {
    let tmp = tempfile::tempdir().unwrap();
    one_day(tmp.path());
    for name in [INV, "function_durations.csv", "app_memory.csv"] {
        let orig = std::fs::read(tmp.path().join(name)).unwrap();
        let mut variants: Vec<Vec<u8>> = (0..orig.len())
            .step_by(3)
            .map(|n| orig[..n].to_vec())
            .collect();
        for (i, b) in [b',', b'\n', b'"', b'-', b'x', 0xff].iter().enumerate() {
            for pos in (i..orig.len()).step_by(13) {
                let mut v = orig.clone();
                v[pos] = *b;
                variants.push(v);
            }
        }
        for v in variants {
            std::fs::write(tmp.path().join(name), &v).unwrap();
            if let Ok(mut t) = AzureTrace::open(tmp.path(), None) {
                while let Ok(Some(_)) = t.next_day() {}
            }
        }
        std::fs::write(tmp.path().join(name), &orig).unwrap();
    }
}

fn day_bytes(dir: &Path, inv: &str, dur: &str, mem: &str) -> DayBytes {
    DayBytes {
        invocations: std::fs::read(dir.join(inv)).unwrap(),
        durations: std::fs::read(dir.join(dur)).unwrap(),
        memory: std::fs::read(dir.join(mem)).unwrap(),
    }
}

#[test]
fn from_bytes_reads_what_open_reads() {
    // One day.
    let tmp = tempfile::tempdir().unwrap();
    one_day(tmp.path());
    let from_disk = read_all(&mut open(tmp.path()));
    let b = day_bytes(tmp.path(), INV, "function_durations.csv", "app_memory.csv");
    let mut t = AzureTrace::from_bytes(vec![b]).unwrap();
    assert_eq!(t.layout(), AzureLayout::OneDay);
    assert_eq!(t.file_days(), vec![1]);
    assert_eq!(read_all(&mut t), from_disk);
    // Several days (each with its memory file: day 3 reuses day 2's, as `open` does).
    let tmp = tempfile::tempdir().unwrap();
    multi_day(tmp.path());
    std::fs::copy(
        tmp.path().join("app_memory_percentiles.anon.d02.csv"),
        tmp.path().join("app_memory_percentiles.anon.d03.csv"),
    )
    .unwrap();
    let from_disk = read_all(&mut open(tmp.path()));
    let days = (1..=3)
        .map(|d| {
            day_bytes(
                tmp.path(),
                &format!("invocations_per_function_md.anon.d{d:02}.csv"),
                &format!("function_durations_percentiles.anon.d{d:02}.csv"),
                &format!("app_memory_percentiles.anon.d{d:02}.csv"),
            )
        })
        .collect();
    let mut t = AzureTrace::from_bytes(days).unwrap();
    assert_eq!(t.layout(), AzureLayout::MultiDay);
    assert_eq!(t.file_days(), vec![1, 2, 3]);
    assert_eq!(read_all(&mut t), from_disk);
}

#[test]
fn from_bytes_errors_name_the_file() {
    assert!(matches!(
        AzureTrace::from_bytes(Vec::new()),
        Err(TraceError::Missing { .. })
    ));
    let tmp = tempfile::tempdir().unwrap();
    one_day(tmp.path());
    let mut b = day_bytes(tmp.path(), INV, "function_durations.csv", "app_memory.csv");
    b.memory.clear();
    let e = err_of(AzureTrace::from_bytes(vec![b.clone()]));
    assert_parse(e, "app_memory.csv", 1, 0, "empty file");
    b.memory = format!("{MEM_HEADER}\no1,A,10,300,1,1\n").into_bytes();
    b.invocations = b"HashFunction,HashOwner,HashApp,minute_1\nf1,o1,A,x\n".to_vec();
    let mut t = AzureTrace::from_bytes(vec![b]).unwrap();
    let e = err_of(t.next_day());
    assert_parse(
        e,
        "invocations_per_function.csv",
        2,
        4,
        "not a non-negative integer",
    );
    let e = err_of(AzureTrace::from_bytes(vec![DayBytes::default()]));
    assert!(e.to_string().starts_with("<memory>/"), "{e}");
}
